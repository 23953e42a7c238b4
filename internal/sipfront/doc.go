// Package sipfront is ccevents' SIP front end: a telephony adapter that
// lets SIP phones and trunks drive the contact-center engine. Agents'
// phones register with digest authentication (credentials from package
// sipstore); a call to a queue's number becomes a session in that queue,
// is answered with an announcement and hold music, and when the engine
// offers it to a recipient the recipient's phone rings; on answer the two
// are bridged with RTP relayed through ccevents. Supervisors listen in
// (a feature code, or the REST wiretap), and agents call out through it.
//
// It makes the same requests a telephony system would (Arrive, Accept,
// Reject, EndCall, StartExternalCall, StartWiretap…) and reacts to what
// the engine decides by following its events on the bus (an offer rings a
// phone, a rescind stops it, session.delete ends the legs). It never
// reaches into the engine's state and never publishes events itself.
//
// SIP signalling is github.com/emiago/sipgo and media github.com/emiago/diago
// (docs/decisions.md). Codecs are G.711 μ-law and A-law.
package sipfront
