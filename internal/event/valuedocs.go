package event

import "time"

// Sentences documenting each value of the enum types; generated documents
// take them from here.

// Description returns the sentence documenting s, as docs/events.md shows it.
func (s State) Description() string {
	return map[State]string{
		StateLoggedOut:    "not logged in; receives nothing",
		StateReady:        "available for queue calls",
		StateAway:         "logged in but unavailable",
		StateOffered:      "a queue call is ringing the recipient",
		StateBusy:         "handling a queue call",
		StateWrapup:       "in the wrap-up window after a call",
		StateExternalCall: "on a call that did not come from a queue",
	}[s]
}

func strategyDoc(s Strategy) string {
	return map[Strategy]string{
		StrategyMostIdle:    "the ready recipient idle longest",
		StrategyRoundRobin:  "ready recipients in turn",
		StrategyFewestCalls: "the ready recipient who took fewest calls",
		StrategyRingAll:     "every ready recipient at once; first to answer takes it",
	}[s]
}

func queueDeleteDoc(r QueueDeleteReason) string {
	return map[QueueDeleteReason]string{
		QueueDeleted:  "an administrator removed the queue",
		QueueShutdown: "the engine running the queue is shutting down",
	}[r]
}

func leaveDoc(r LeaveReason) string {
	return map[LeaveReason]string{
		LeaveAbandoned:    "the caller hung up while waiting",
		LeaveTimeout:      "the caller reached the queue's maximum wait",
		LeaveDelivered:    "the caller was connected to a recipient",
		LeaveExited:       "the caller chose to leave (e.g. pressed a key for voicemail)",
		LeaveTransferred:  "the call was moved elsewhere by a rule or supervisor",
		LeaveQueueDeleted: "the queue stopped running",
		LeaveQueueFull:    "the queue was full when the caller arrived",
	}[r]
}

func logoutDoc(r LogoutReason) string {
	return map[LogoutReason]string{
		LogoutRequested: "the recipient logged out",
		LogoutForced:    "a supervisor or administrator logged the recipient out",
		LogoutDeleted:   "the recipient was removed",
		LogoutShutdown:  "the engine holding the recipient is shutting down",
	}[r]
}

func rejectDoc(r RejectReason) string {
	return map[RejectReason]string{
		RejectDeclined:    "the recipient declined the call",
		RejectTimeout:     "the recipient did not answer within the offer timeout",
		RejectBusy:        "the recipient's device reported busy",
		RejectUnreachable: "the recipient's device could not be reached; the recipient goes away",
	}[r]
}

func rescindDoc(r RescindReason) string {
	return map[RescindReason]string{
		RescindAbandoned:            "the caller hung up while the offer rang",
		RescindAnsweredElsewhere:    "another recipient took the call",
		RescindQueueTimeout:         "the caller reached the queue's maximum wait",
		RescindTransferred:          "the call was moved elsewhere",
		RescindQueueDeleted:         "the queue stopped running",
		RescindRecipientUnavailable: "the recipient went away, paused the queue or logged out",
	}[r]
}

func partyDoc(p Party) string {
	return map[Party]string{
		PartyCaller:    "the caller (remote party) hung up",
		PartyRecipient: "the recipient hung up",
		PartySystem:    "the platform ended the call (timeout, transfer, failure)",
	}[p]
}

func directionDoc(d Direction) string {
	return map[Direction]string{
		Inbound:  "the call came into the contact center",
		Outbound: "the contact center placed the call",
	}[d]
}

func wiretapModeDoc(m WiretapMode) string {
	return map[WiretapMode]string{
		WiretapListen:  "hears both parties; nobody hears the supervisor",
		WiretapWhisper: "hears both parties; only the recipient hears the supervisor",
		WiretapBarge:   "joins the call; both parties hear the supervisor",
	}[m]
}

func wiretapFailDoc(r WiretapFailReason) string {
	return map[WiretapFailReason]string{
		WiretapNoActiveSession:       "the recipient was not on a call",
		WiretapNotPermitted:          "the supervisor may not monitor this recipient",
		WiretapAlreadyMonitored:      "another supervisor already monitors the call",
		WiretapSupervisorUnreachable: "the supervisor's device could not be reached",
		WiretapSessionEnded:          "the call ended while monitoring was being set up",
	}[r]
}

func timeFromMS(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
