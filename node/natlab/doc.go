// Package natlab is kith's NAT lab: network namespaces joined by veth pairs,
// with NAT routers made of iptables rules, in which real kith processes meet
// through a relay and hole-punch, as they would across the internet.
//
// Everything but this file carries the build tag natlab, so without the tag
// the package is empty. Run the lab as root:
//
//	go test -tags natlab -v ./node/natlab/
//
// The lab is sealed: every veth it creates ends in one of its own
// namespaces (never in the host's), no namespace it creates has a route out
// of the lab, and the setup checks both and refuses to run otherwise. It
// never touches the host's interfaces, routes or iptables rules; all of it
// goes when the namespaces are deleted at the end of each test. README.md
// says what each scenario proves.
//
// It is not a unit-test helper for other packages: it needs root, ip(8) and
// iptables(8), and runs kith only as child processes (ip netns exec), never
// in-process.
package natlab
