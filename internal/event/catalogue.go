package event

import (
	"strconv"
	"time"
)

// JSON types a Field can have.
const (
	TypeString  = "string"
	TypeInteger = "integer"
	TypeNumber  = "number"
	TypeBoolean = "boolean"
	TypeObject  = "object"
	TypeArray   = "array"
)

// Formats a string Field can have; each maps to a Pattern in the schema.
const (
	FormatDateTime  = "date-time"  // TimestampLayout: 2026-11-25T11:32:43.123Z
	FormatAccountID = "account-id" // 32 lowercase hex digits
	FormatEntityID  = "entity-id"  // 1-64 of A-Z a-z 0-9 _ -
	FormatEventID   = "event-id"   // 32 lowercase hex digits
)

// Patterns behind the formats, as regular expressions for JSON Schema.
const (
	patternDateTime  = `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$`
	patternAccountID = `^[0-9a-f]{32}$`
	patternEntityID  = `^[A-Za-z0-9_-]{1,64}$`
)

// Field describes one JSON field of a payload.
type Field struct {
	Name        string
	Type        string // TypeString, TypeInteger, …
	Description string
	Required    bool
	Enum        []string // documented values; for integers, their decimal form
	Format      string   // FormatDateTime, FormatEntityID, … for strings
	Minimum     *int64   // for integers
	MaxLength   int      // for strings, in characters; 0 means no limit
	Items       *Field   // for arrays: the element
	Properties  []Field  // for objects: the members
	// EnumDocs explains each Enum value, in the same order, for people.
	EnumDocs []string
}

// Pattern returns the regular expression a string field's Format implies,
// or "" when it has none.
func (f Field) Pattern() string {
	switch f.Format {
	case FormatDateTime:
		return patternDateTime
	case FormatAccountID, FormatEventID:
		return patternAccountID
	case FormatEntityID:
		return patternEntityID
	}
	return ""
}

// Spec is the catalogue entry of one event.
type Spec struct {
	Family      Family
	Name        string
	Description string // one sentence of meaning: when it fires
	// IDs are the envelope ids the event carries besides account_id, with
	// what each means here; the family's own id is always first and required.
	IDs []Field
	// Fields are the event's own fields, not the envelope's, in encoding order.
	Fields  []Field
	Example Payload
}

// Event returns "<family>.<name>", the value of the payload's "event" field.
func (s Spec) Event() string { return string(s.Family) + "." + s.Name }

// RoutingKey returns the routing key pattern, e.g.
// qubicle.queue.{ACCOUNT_ID}.{QUEUE_ID}.join.
func (s Spec) RoutingKey() string {
	ent := map[Family]string{Queue: "{QUEUE_ID}", Recipient: "{RECIPIENT_ID}", Session: "{SESSION_ID}", Stats: "{QUEUE_ID}"}[s.Family]
	if s.entityField() == "" {
		ent = StatsTotal
	}
	return "qubicle." + string(s.Family) + ".{ACCOUNT_ID}." + ent + "." + s.Name
}

// entityField is the envelope field the routing key's entity segment
// repeats, or "" for stats.account, whose entity is always StatsTotal.
func (s Spec) entityField() string {
	if s.Family == Stats && s.Name == "account" {
		return ""
	}
	return s.Family.EntityField()
}

// Catalogue returns every event's Spec in a stable order: the queue, the
// recipient, the session, then the stats family. Each call builds fresh values.
func Catalogue() []Spec {
	out := make([]Spec, len(kinds))
	for i := range kinds {
		out[i] = specAt(i)
	}
	return out
}

// Lookup returns the Spec of one event.
func Lookup(f Family, name string) (Spec, bool) {
	i, ok := lookupKind(f, name)
	if !ok {
		return Spec{}, false
	}
	return specAt(i), true
}

// EnvelopeFields describes the correlation fields every payload carries, in
// encoding order. Which of queue_id, recipient_id and session_id an event
// carries is in its Spec.IDs.
func EnvelopeFields() []Field {
	return []Field{
		{Name: "account_id", Type: TypeString, Format: FormatAccountID, Required: true,
			Description: "The account the event belongs to: 32 lowercase hex digits, the same as in the routing key."},
		{Name: "event", Type: TypeString, Required: true,
			Description: `The event type, "<family>.<name>", e.g. "queue.join".`},
		{Name: "event_id", Type: TypeString, Format: FormatEventID, Required: true,
			Description: "Unique id of this event (32 lowercase hex digits); use it to drop duplicates."},
		{Name: "timestamp", Type: TypeString, Format: FormatDateTime, Required: true,
			Description: "When the event happened: RFC 3339, UTC, millisecond precision."},
		{Name: "timestamp_ms", Type: TypeInteger, Minimum: ptr(0), Required: true,
			Description: "The same instant as timestamp, in Unix milliseconds."},
		{Name: "sequence", Type: TypeInteger, Minimum: ptr(1),
			Description: "Position of the event in the stream, added by the gateway at delivery; pass it as since to resume. Publishers must leave it out."},
		{Name: "queue_id", Type: TypeString, Format: FormatEntityID,
			Description: "The queue the event concerns."},
		{Name: "recipient_id", Type: TypeString, Format: FormatEntityID,
			Description: "The recipient (agent) the event concerns."},
		{Name: "session_id", Type: TypeString, Format: FormatEntityID,
			Description: "The call session the event concerns."},
		{Name: "custom", Type: TypeObject,
			Description: "Reserved for producer extensions: any JSON object, carried through untouched."},
	}
}

func ptr(v int64) *int64 { return &v }

// Field builders keep the catalogue below readable.

func idField(name, desc string, required bool) Field {
	return Field{Name: name, Type: TypeString, Format: FormatEntityID, Required: required, Description: desc}
}

func textField(name, desc string, required bool, max int) Field {
	return Field{Name: name, Type: TypeString, Required: required, MaxLength: max, Description: desc}
}

func intField(name, desc string, min int64) Field {
	return Field{Name: name, Type: TypeInteger, Required: true, Minimum: ptr(min), Description: desc}
}

func timeField(name, desc string) Field {
	return Field{Name: name, Type: TypeString, Format: FormatDateTime, Required: true, Description: desc}
}

func idListField(name, desc string) Field {
	return Field{Name: name, Type: TypeArray, Required: true, Description: desc,
		Items: &Field{Type: TypeString, Format: FormatEntityID}}
}

func enumOf[T ~string](name, desc string, vals []T, docs func(T) string) Field {
	f := Field{Name: name, Type: TypeString, Required: true, Description: desc}
	for _, v := range vals {
		f.Enum = append(f.Enum, string(v))
		f.EnumDocs = append(f.EnumDocs, docs(v))
	}
	return f
}

// transition is the state and previous_state fields of an event that
// moves a recipient: after and before say which states each can hold,
// since the two differ for almost every event.
func transition(what, after, before string) []Field {
	return []Field{
		states.field("state", "The recipient's state after "+what+" ("+after+")."),
		states.field("previous_state", "The recipient's state before "+what+" ("+before+")."),
	}
}

func callerName() Field {
	return textField("caller_id_name", "The caller's name as presented by the network; absent when unknown.", false, maxShortText)
}

func callerNumber() Field {
	return textField("caller_id_number", `The caller's number as presented by the network ("anonymous" when withheld).`, true, maxShortText)
}

func specAt(i int) Spec {
	acct := "0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10"
	queue, rcpt, sess := "7a1c2e3f4b5d6a7c8e9f0a1b2c3d4e5f", "2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e1b", "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
	env := func(ev string, ms int64, q, r, s string) Envelope {
		const base = 1795606363123 // 2026-11-25T11:32:43.123Z
		t := base + ms
		return Envelope{AccountID: acct, Event: ev, EventID: exampleEventID(i),
			Timestamp: formatMS(t), TimestampMS: t, QueueID: q, RecipientID: r, SessionID: s}
	}
	qID := func(desc string, req bool) Field { return idField("queue_id", desc, req) }
	rID := func(desc string, req bool) Field { return idField("recipient_id", desc, req) }
	sID := func(desc string, req bool) Field { return idField("session_id", desc, req) }
	theQueue := qID("The queue.", true)
	theRecipient := rID("The recipient.", true)
	theSession := sID("The caller's call session.", true)
	// Fields several events carry with the same meaning.
	offeredCall := sID("The offered call.", true)
	waitingQueue := qID("The queue the call waits in.", true)
	callsQueue := qID("The queue the call came from, if any.", false)
	waitDuration := intField("wait_duration_ms", "How long the caller waited in the queue, in milliseconds.", 0)
	ringDuration := intField("ring_duration_ms", "How long the offer rang, in milliseconds.", 0)
	sp := Spec{Family: kinds[i].family, Name: kinds[i].name}
	switch sp.Family + "." + Family(sp.Name) {
	case "queue.create":
		sp.Description = "A queue has started running and accepts callers."
		sp.IDs = []Field{theQueue}
		sp.Fields = []Field{
			textField("queue_name", "The queue's display name.", true, maxShortText),
			strategies.field("strategy", "How the queue picks the recipient for its next caller."),
			intField("max_wait_s", "Longest a caller may wait before leaving with reason timeout, in seconds; 0 means no limit.", 0),
			intField("max_size", "Most callers the queue holds; 0 means no limit.", 0),
			intField("offer_timeout_s", "How long an offer rings a recipient before it counts as rejected (reason timeout), in seconds.", 1),
			intField("wrapup_s", "Length of the wrap-up window after each call, in seconds; 0 means none.", 0),
		}
		sp.Example = &QueueCreate{Envelope: env("queue.create", 0, queue, "", ""), QueueName: "Support", Strategy: StrategyMostIdle,
			MaxWaitS: 600, MaxSize: 50, OfferTimeoutS: 20, WrapupS: 30}
	case "queue.delete":
		sp.Description = "A queue has stopped running; callers still waiting leave it with reason queue_deleted."
		sp.IDs = []Field{theQueue}
		sp.Fields = []Field{
			textField("queue_name", "The queue's display name.", true, maxShortText),
			queueDeleteReasons.field("reason", "Why the queue stopped."),
			intField("waiting", "Callers who were still waiting when the queue stopped.", 0),
		}
		sp.Example = &QueueDelete{Envelope: env("queue.delete", 3600000, queue, "", ""), QueueName: "Support", Reason: QueueDeleted, Waiting: 0}
	case "queue.join":
		sp.Description = "A caller entered the queue."
		sp.IDs = []Field{theQueue, theSession}
		sp.Fields = []Field{callerName(), callerNumber(),
			intField("position", "The caller's place in line on joining; 1 is next to be offered.", 1),
			intField("estimated_wait_s", "Estimated wait until the caller is connected, in seconds, from the queue's recent answer times.", 0),
		}
		sp.Example = &QueueJoin{Envelope: env("queue.join", 1000, queue, "", sess), CallerIDName: "Ada Lovelace",
			CallerIDNumber: "+14155550123", Position: 1, EstimatedWaitS: 45}
	case "queue.leave":
		sp.Description = "A caller left the queue, for the reason given; fires for every caller that joined, including those delivered."
		sp.IDs = []Field{theQueue, theSession, rID("The recipient who took the call, when reason is delivered.", false)}
		sp.Fields = []Field{
			leaveReasons.field("reason", "Why the caller left."),
			intField("position", "The caller's place in line when leaving.", 1),
			waitDuration,
		}
		sp.Example = &QueueLeave{Envelope: env("queue.leave", 38000, queue, rcpt, sess), Reason: LeaveDelivered, Position: 1, WaitDurationMS: 37000}
	case "queue.delivered":
		sp.Description = "A queued caller was connected to a recipient who answered."
		sp.IDs = []Field{theQueue, theSession, rID("The recipient who answered.", true)}
		sp.Fields = []Field{
			intField("position", "The caller's place in line when delivered.", 1),
			waitDuration,
		}
		sp.Example = &QueueDelivered{Envelope: env("queue.delivered", 38000, queue, rcpt, sess), Position: 1, WaitDurationMS: 37000}

	case "recipient.create":
		sp.Description = "A recipient logged in to the contact center."
		sp.IDs = []Field{theRecipient}
		sp.Fields = append(transition("logging in", "always ready", "always logged_out"),
			textField("recipient_name", "The recipient's display name; absent when not set.", false, maxShortText),
			idListField("queues", "The queues the recipient takes calls from."))
		sp.Example = &RecipientCreate{Envelope: env("recipient.create", -60000, "", rcpt, ""),
			Transition: Transition{StateReady, StateLoggedOut}, RecipientName: "Grace Hopper", Queues: []string{queue}}
	case "recipient.delete":
		sp.Description = "A recipient logged out."
		sp.IDs = []Field{theRecipient}
		sp.Fields = append(transition("logging out", "always logged_out", "ready or away; an outstanding offer is rescinded and wrap-up completed first, each with its own event"),
			logoutReasons.field("reason", "Why the recipient logged out."))
		sp.Example = &RecipientDelete{Envelope: env("recipient.delete", 3500000, "", rcpt, ""),
			Transition: Transition{StateLoggedOut, StateReady}, Reason: LogoutRequested}
	case "recipient.ready":
		sp.Description = "A recipient became available to receive queue calls."
		sp.IDs = []Field{theRecipient}
		sp.Fields = transition("the change", "always ready", "always away")
		sp.Example = &RecipientReady{Envelope: env("recipient.ready", -30000, "", rcpt, ""), Transition: Transition{StateReady, StateAway}}
	case "recipient.away":
		sp.Description = "A recipient became unavailable and receives no queue calls."
		sp.IDs = []Field{theRecipient}
		sp.Fields = append(transition("the change", "always away", "always ready; an outstanding offer is rescinded and wrap-up completed first, each with its own event"),
			textField("reason", `Free text the recipient or a supervisor gave, e.g. "lunch"; absent when none.`, false, maxShortText))
		sp.Example = &RecipientAway{Envelope: env("recipient.away", -40000, "", rcpt, ""), Transition: Transition{StateAway, StateReady}, Reason: "coffee"}
	case "recipient.pause":
		sp.Description = "A recipient stopped taking calls from one queue while staying available for the others."
		sp.IDs = []Field{theRecipient, qID("The queue paused.", true)}
		sp.Fields = append(transition("pausing", "unchanged by it", "the same as state"),
			textField("reason", "Free text given for the pause; absent when none.", false, maxShortText),
			idListField("paused_queues", "Every queue the recipient has paused, this one included."))
		sp.Example = &RecipientPause{Envelope: env("recipient.pause", 120000, queue, rcpt, ""),
			Transition: Transition{StateReady, StateReady}, Reason: "training", PausedQueues: []string{queue}}
	case "recipient.resume":
		sp.Description = "A recipient takes calls from a paused queue again."
		sp.IDs = []Field{theRecipient, qID("The queue resumed.", true)}
		sp.Fields = append(transition("resuming", "unchanged by it", "the same as state"),
			intField("paused_duration_ms", "How long the queue was paused, in milliseconds.", 0),
			idListField("paused_queues", "The queues still paused."))
		sp.Example = &RecipientResume{Envelope: env("recipient.resume", 420000, queue, rcpt, ""),
			Transition: Transition{StateReady, StateReady}, PausedDurationMS: 300000, PausedQueues: []string{}}
	case "recipient.wrapup_start":
		sp.Description = "The wrap-up window after a handled call began; the recipient receives no queue calls until it completes."
		sp.IDs = []Field{theRecipient, sID("The call just handled.", true), callsQueue}
		sp.Fields = append(transition("wrap-up began", "always wrapup", "always wrapup: the recipient.hangup before it made the change"),
			intField("wrapup_s", "Length of the window, in seconds.", 0))
		sp.Example = &RecipientWrapupStart{Envelope: env("recipient.wrapup_start", 218000, queue, rcpt, sess),
			Transition: Transition{StateWrapup, StateBusy}, WrapupS: 30}
	case "recipient.wrapup_complete":
		sp.Description = "The wrap-up window ended."
		sp.IDs = []Field{theRecipient, sID("The call wrapped up.", true), callsQueue}
		sp.Fields = append(transition("wrap-up ended", "ready or away, whichever the recipient last chose", "always wrapup"),
			intField("wrapup_duration_ms", "How long wrap-up lasted, in milliseconds.", 0))
		sp.Example = &RecipientWrapupComplete{Envelope: env("recipient.wrapup_complete", 248000, queue, rcpt, sess),
			Transition: Transition{StateReady, StateWrapup}, WrapupDurationMS: 30000}
	case "recipient.offer":
		sp.Description = "A queue call is being presented (ringing) to the recipient."
		sp.IDs = []Field{theRecipient, waitingQueue, offeredCall}
		sp.Fields = append(transition("the offer", "always offered", "always ready"), callerName(), callerNumber(),
			intField("timeout_s", "How long the offer rings before it counts as rejected (reason timeout), in seconds.", 1),
			intField("wait_duration_ms", "How long the caller has waited so far, in milliseconds.", 0))
		sp.Example = &RecipientOffer{Envelope: env("recipient.offer", 31000, queue, rcpt, sess),
			Transition: Transition{StateOffered, StateReady}, CallerIDName: "Ada Lovelace", CallerIDNumber: "+14155550123",
			TimeoutS: 20, WaitDurationMS: 30000}
	case "recipient.reject":
		sp.Description = "The recipient did not take an offered call; the caller stays in the queue."
		sp.IDs = []Field{theRecipient, waitingQueue, offeredCall}
		sp.Fields = append(transition("the rejection", "ready; away when the reason is unreachable: the engine offers nothing to a recipient it cannot reach until they go ready again", "always offered"),
			rejectReasons.field("reason", "Why the call was not taken."),
			ringDuration)
		sp.Example = &RecipientReject{Envelope: env("recipient.reject", 51000, queue, rcpt, sess),
			Transition: Transition{StateReady, StateOffered}, Reason: RejectTimeout, RingDurationMS: 20000}
	case "recipient.rescind":
		sp.Description = "The engine withdrew an offer before the recipient answered it."
		sp.IDs = []Field{theRecipient, qID("The queue the call was in.", true), offeredCall}
		sp.Fields = append(transition("the withdrawal", "ready or away, whichever the recipient last chose", "always offered"),
			rescindReasons.field("reason", "Why the offer was withdrawn."),
			ringDuration)
		sp.Example = &RecipientRescind{Envelope: env("recipient.rescind", 35000, queue, rcpt, sess),
			Transition: Transition{StateReady, StateOffered}, Reason: RescindAbandoned, RingDurationMS: 4000}
	case "recipient.delivered":
		sp.Description = "The recipient answered an offered call and is now handling it."
		sp.IDs = []Field{theRecipient, qID("The queue the call came from.", true), sID("The call.", true)}
		sp.Fields = append(transition("answering", "always busy", "always offered"), callerName(), callerNumber(),
			waitDuration,
			intField("ring_duration_ms", "How long the offer rang before the answer, in milliseconds.", 0))
		sp.Example = &RecipientDelivered{Envelope: env("recipient.delivered", 38000, queue, rcpt, sess),
			Transition: Transition{StateBusy, StateOffered}, CallerIDName: "Ada Lovelace", CallerIDNumber: "+14155550123",
			WaitDurationMS: 37000, RingDurationMS: 7000}
	case "recipient.hangup":
		sp.Description = "The call the recipient was handling disconnected."
		sp.IDs = []Field{theRecipient, sID("The call that ended.", true), callsQueue}
		sp.Fields = append(transition("the hangup", "wrapup when the queue has a wrap-up window, otherwise ready or away, whichever the recipient last chose", "always busy"),
			parties.field("hangup_by", "Who ended the call."),
			intField("duration_ms", "How long the recipient was connected to the caller, in milliseconds.", 0))
		sp.Example = &RecipientHangup{Envelope: env("recipient.hangup", 218000, queue, rcpt, sess),
			Transition: Transition{StateWrapup, StateBusy}, HangupBy: PartyCaller, DurationMS: 180000}
	case "recipient.external_call_start":
		sp.Description = "The recipient began a call that did not come from a queue (a direct or outbound call)."
		sp.IDs = []Field{theRecipient, sID("The external call.", true)}
		sp.Fields = append(transition("the call began", "always external_call", "ready or away; an outstanding offer is rescinded first"),
			directions.field("direction", "Whether the recipient received or placed the call."),
			textField("number", "The other party's number; absent when unknown.", false, maxShortText))
		sp.Example = &RecipientExternalCallStart{Envelope: env("recipient.external_call_start", 600000, "", rcpt, "5d4c3b2a19f8e7d6c5b4a39281706f5e"),
			Transition: Transition{StateExternalCall, StateReady}, Direction: Outbound, Number: "+442079460000"}
	case "recipient.external_call_end":
		sp.Description = "The recipient's external call ended."
		sp.IDs = []Field{theRecipient, sID("The external call.", true)}
		sp.Fields = append(transition("the call ended", "ready or away, whichever the recipient last chose", "always external_call"),
			directions.field("direction", "Whether the recipient received or placed the call."),
			intField("duration_ms", "How long the call lasted, in milliseconds.", 0))
		sp.Example = &RecipientExternalCallEnd{Envelope: env("recipient.external_call_end", 690000, "", rcpt, "5d4c3b2a19f8e7d6c5b4a39281706f5e"),
			Transition: Transition{StateReady, StateExternalCall}, Direction: Outbound, DurationMS: 90000}
	case "recipient.sync":
		sp.Description = "The recipient's full current state, sent periodically and on request so clients can correct any drift."
		sp.IDs = []Field{theRecipient}
		sp.Fields = []Field{
			states.field("state", "The recipient's current state."),
			timeField("state_since", "When the recipient entered that state."),
			intField("state_since_ms", "The same instant as state_since, in Unix milliseconds.", 0),
			idListField("queues", "The queues the recipient takes calls from."),
			idListField("paused_queues", "The queues the recipient has paused."),
			{Name: "active_sessions", Type: TypeArray, Required: true, Description: "The calls the recipient is on now.",
				Items: &Field{Type: TypeObject, Properties: []Field{
					idField("session_id", "The call.", true),
					idField("queue_id", "The queue it came from; absent for external calls.", false),
					directions.field("direction", "Whether the call came in or went out."),
					timeField("started_at", "When the call began."),
				}}},
		}
		sp.Example = &RecipientSync{Envelope: env("recipient.sync", 60000, "", rcpt, ""),
			State: StateBusy, StateSince: formatMS(1795606363123 + 38000), StateSinceMS: 1795606363123 + 38000,
			Queues: []string{queue}, PausedQueues: []string{},
			ActiveSessions: []ActiveSession{{SessionID: sess, QueueID: queue, Direction: Inbound, StartedAt: formatMS(1795606363123)}}}
	case "recipient.wiretap_start":
		sp.Description = "A supervisor began monitoring the recipient's call."
		sp.IDs = []Field{theRecipient, sID("The monitored call.", true)}
		sp.Fields = []Field{
			idField("supervisor_id", "The supervisor (a recipient or user id) monitoring the call.", true),
			wiretapModes.field("mode", "How the supervisor takes part."),
		}
		sp.Example = &RecipientWiretapStart{Envelope: env("recipient.wiretap_start", 60000, "", rcpt, sess),
			SupervisorID: "c3d4e5f60718293a4b5c6d7e8f901a2b", Mode: WiretapListen}
	case "recipient.wiretap_stop":
		sp.Description = "A supervisor stopped monitoring the recipient's call, or the call ended."
		sp.IDs = []Field{theRecipient, sID("The monitored call.", true)}
		sp.Fields = []Field{
			idField("supervisor_id", "The supervisor who was monitoring.", true),
			wiretapModes.field("mode", "How the supervisor took part."),
			intField("duration_ms", "How long monitoring lasted, in milliseconds.", 0),
		}
		sp.Example = &RecipientWiretapStop{Envelope: env("recipient.wiretap_stop", 120000, "", rcpt, sess),
			SupervisorID: "c3d4e5f60718293a4b5c6d7e8f901a2b", Mode: WiretapListen, DurationMS: 60000}
	case "recipient.wiretap_failed":
		sp.Description = "A supervisor's attempt to monitor the recipient failed."
		sp.IDs = []Field{theRecipient, sID("The call the supervisor tried to monitor; absent when the recipient was on none.", false)}
		sp.Fields = []Field{
			idField("supervisor_id", "The supervisor who tried to monitor.", true),
			wiretapModes.field("mode", "How the supervisor wanted to take part."),
			wiretapFailReasons.field("reason", "Why monitoring failed."),
		}
		sp.Example = &RecipientWiretapFailed{Envelope: env("recipient.wiretap_failed", 70000, "", rcpt, ""),
			SupervisorID: "c3d4e5f60718293a4b5c6d7e8f901a2b", Mode: WiretapWhisper, Reason: WiretapNoActiveSession}
	case "recipient.interaction_finalize_start":
		sp.Description = "The window for recording a handled call's disposition and notes opened."
		sp.IDs = []Field{theRecipient, sID("The call being finalized.", true), callsQueue}
		sp.Fields = []Field{
			intField("timeout_s", "How long the window stays open, in seconds; 0 means until the recipient closes it.", 0),
		}
		sp.Example = &RecipientInteractionFinalizeStart{Envelope: env("recipient.interaction_finalize_start", 218000, queue, rcpt, sess), TimeoutS: 120}
	case "recipient.interaction_finalize_end":
		sp.Description = "The window for recording a call's disposition and notes closed."
		sp.IDs = []Field{theRecipient, sID("The call finalized.", true), callsQueue}
		sp.Fields = []Field{
			textField("disposition", `The outcome code the recipient chose, e.g. "resolved"; absent when none was chosen.`, false, maxShortText),
			textField("notes", "Notes the recipient wrote; absent when none.", false, maxNotes),
			intField("duration_ms", "How long the window was open, in milliseconds.", 0),
			{Name: "timed_out", Type: TypeBoolean, Required: true, Description: "True when the window closed because its time ran out."},
		}
		sp.Example = &RecipientInteractionFinalizeEnd{Envelope: env("recipient.interaction_finalize_end", 243000, queue, rcpt, sess),
			Disposition: "resolved", Notes: "Reset the customer's password.", DurationMS: 25000}

	case "session.create":
		sp.Description = "A call session was established: a call reached the contact center or was placed by it."
		sp.IDs = []Field{sID("The call session.", true), qID("The queue the call is for, if any.", false),
			rID("The recipient who placed or directly received the call, if any.", false)}
		sp.Fields = []Field{callerName(), callerNumber(),
			textField("callee", "The number or extension that was dialled.", true, maxShortText),
			directions.field("direction", "Whether the call came in or went out."),
		}
		sp.Example = &SessionCreate{Envelope: env("session.create", 0, queue, "", sess),
			CallerIDName: "Ada Lovelace", CallerIDNumber: "+14155550123", Callee: "+18005550100", Direction: Inbound}
	case "session.delete":
		sp.Description = "A call session ended."
		sp.IDs = []Field{sID("The call session.", true), qID("The queue the call was for, if any.", false),
			rID("The recipient the call was connected to, if any.", false)}
		codes := Field{Name: "disconnect_cause_code", Type: TypeInteger, Required: true,
			Description: "Numeric disconnection cause: the Q.850 cause code, or a platform code above 127."}
		for _, c := range Causes() {
			codes.Enum = append(codes.Enum, strconv.Itoa(c.Code()))
			codes.EnumDocs = append(codes.EnumDocs, string(c))
		}
		sp.Fields = []Field{codes,
			enumOf("disconnect_cause", "Name of the cause, always the one matching disconnect_cause_code.", Causes(), Cause.Description),
			parties.field("hangup_by", "Who ended the call."),
			intField("duration_ms", "How long the session lasted, from create to delete, in milliseconds.", 0),
		}
		sp.Example = &SessionDelete{Envelope: env("session.delete", 218000, queue, rcpt, sess),
			DisconnectCauseCode: 16, DisconnectCause: CauseNormalClearing, HangupBy: PartyCaller, DurationMS: 218000}

	case "stats.queue", "stats.account":
		sp = statsSpec(sp, env("stats."+sp.Name, 240000, queue, "", ""))
	}
	return sp
}

// exampleEventID returns a fixed, valid event id per catalogue entry so that
// generated documents do not change between runs.
func exampleEventID(i int) string {
	const id = "5f0c3a9e2d7b41c68e0f1a2b3c4d5e00"
	b := []byte(id)
	b[30], b[31] = hexDigits[i>>4&0xf], hexDigits[i&0xf]
	return string(b)
}

func formatMS(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(TimestampLayout)
}
