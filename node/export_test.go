package node

// MakeTicket exposes makeTicket to the external tests.
var MakeTicket = makeTicket
