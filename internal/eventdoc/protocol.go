package eventdoc

import "github.com/ccevents/ccevents/internal/event"

// protocolMessage is one of the websocket protocol's own messages (a
// request, the reply, the notice) as an AsyncAPI component. This file holds
// the protocol's schema apart from the events' so that it can move beside a
// definition of the protocol as a whole; it needs only omap and event.
type protocolMessage struct {
	id   string
	body omap
}

// protocolMessages describes the request, reply and notice frames.
func protocolMessages() []protocolMessage {
	str := func(desc string) omap { return omap{{"type", "string"}, {"description", desc}} }
	action := func(a string) omap { return omap{{"type", "string"}, {"const", a}} }
	since := omap{
		{"type", "object"},
		{"description", "Resume point: replay every stored event after this sequence of this epoch, then continue live."},
		{"required", []string{"sequence"}},
		{"properties", omap{
			{"sequence", omap{{"type", "integer"}, {"minimum", 0}}},
			{"epoch", omap{{"type", "string"}}},
		}},
	}
	bindingData := omap{
		{"type", "object"},
		{"required", []string{"account_id"}},
		{"properties", omap{
			{"account_id", omap{{"type", "string"}, {"pattern", event.Field{Format: event.FormatAccountID}.Pattern()}, {"description", "The account whose events to receive; the token must be allowed to see it. On unsubscribe it says whose short bindings to remove (every account's without it)."}}},
			{"binding", str("One binding, e.g. qubicle.queue.{ACCOUNT_ID}.* ; '*' matches one segment, '#' zero or more, and a binding covers everything below it. The short form qubicle.<family> (2600Hz Qubicle's) means qubicle.<family>.{account_id}.*, and events carry it as written in subscribed_key.")},
			{"bindings", omap{{"type", "array"}, {"items", omap{{"type", "string"}}}, {"description", "Several bindings at once, instead of binding."}}},
			{"since", since},
			{"snapshot", omap{{"type", "boolean"}, {"description", "subscribe only: return the account's current state in the reply and resume the new bindings from the sequence it is consistent with (not together with since)."}}},
		}},
	}
	req := func(a, desc string, data omap, tokenRequired bool) protocolMessage {
		props := omap{
			{"action", action(a)},
			{"request_id", str("Any string; echoed in the reply (a request without one gets a generated one).")},
		}
		req := []string{"action"}
		if tokenRequired {
			props = append(props, kv{"auth_token", str("The new token from PUT /v2/api_auth.")})
			req = append(req, "auth_token")
		} else {
			props = append(props, kv{"auth_token", str("A token from PUT /v2/api_auth. Needed by the first subscribe of a connection; later requests may leave it out and act with the last token that verified on the connection, while it has not expired. A token given is always checked.")})
		}
		if data != nil {
			props = append(props, kv{"data", data})
			req = append(req, "data")
		}
		return protocolMessage{a, omap{
			{"name", a}, {"title", a + " request"}, {"summary", desc},
			{"payload", omap{{"type", "object"}, {"required", req}, {"properties", props}}},
		}}
	}
	return []protocolMessage{
		req("subscribe", "Subscribe to one or more bindings of an account.", bindingData, false),
		req("unsubscribe", "Remove bindings from the connection.", bindingData, false),
		req("ping", "Application-level liveness check; answered with a success reply.", nil, false),
		req("refresh", "Replace the connection's auth token with a fresh one.", nil, true),
		{"reply", omap{
			{"name", "reply"}, {"title", "reply"},
			{"summary", "The one answer to each request."},
			{"payload", omap{
				{"type", "object"},
				{"required", []string{"action", "request_id", "status", "data"}},
				{"properties", omap{
					{"action", action("reply")},
					{"request_id", omap{{"description", "The request's request_id, or one generated for a request without (32 hex characters, as Kazoo's)."}}},
					{"status", omap{{"type", "string"}, {"enum", []string{"success", "error"}}}},
					{"data", omap{
						{"type", "object"},
						{"properties", omap{
							{"unsubscribed", omap{{"type", "array"}, {"items", omap{{"type", "string"}}}, {"description", "On unsubscribe: the bindings it removed (none when they were not subscribed, which is no error)."}}},
							{"subscribed", omap{{"type", "array"}, {"items", omap{{"type", "string"}}}, {"description", "On subscribe or unsubscribe: the bindings now active on the connection, as the client wrote them."}}},
							{"epoch", str("On subscribe: the stream's epoch, which names its history.")},
							{"sequence", omap{{"type", "integer"}, {"description", "On subscribe without since: the stream position the new bindings are live from."}}},
							{"recovered", omap{{"type", "boolean"}, {"description", "With since or snapshot: true when every missed event is replayed; false when history no longer reaches back, the epoch changed or since lies beyond the end, so the client must re-sync (message says which)."}}},
							{"replay_until", omap{{"type", "integer"}, {"description", "With since or snapshot: the replay ends at this sequence; live events follow."}}},
							{"snapshot", omap{{"type", "object"}, {"description", "With snapshot: true: the account's queues and recipients and the sequence and epoch they are consistent with, as GET /v2/accounts/{ACCOUNT_ID}/qubicle_state returns them."}}},
							{"retry_after", omap{{"type", "integer"}, {"description", "Seconds to wait before the next token check, after repeated auth failures from this address."}}},
							{"response", omap{{"type", "string"}, {"const", "pong"}, {"description", "On ping: Kazoo's answer."}}},
							{"pong", omap{{"type", "boolean"}, {"description", "On ping: true."}}},
							{"errors", omap{{"type", "array"}, {"items", omap{{"type", "string"}}}, {"description", "On error: messages a person can act on. A token that was checked and refused begins \"failed to authenticate token\", on which Kazoo clients log in again."}}},
							{"message", str("On error: the first of errors; with recovered false: why.")},
						}},
					}},
				}},
			}},
		}},
		{"notice", omap{
			{"name", "notice"}, {"title", "notice"},
			{"summary", "Sent before a planned close so the client reconnects on its own terms."},
			{"payload", omap{
				{"type", "object"},
				{"required", []string{"action", "data"}},
				{"properties", omap{
					{"action", action("notice")},
					{"data", omap{
						{"type", "object"},
						{"required", []string{"reason"}},
						{"properties", omap{{"reason", str("Why the connection will close, e.g. shutdown or token_expiring.")}}},
					}},
				}},
			}},
		}},
	}
}
