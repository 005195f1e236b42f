package node

// QUICCertTemplate exposes quicCertTemplate to the external tests.
var QUICCertTemplate = quicCertTemplate
