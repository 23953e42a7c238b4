package sipfront

import (
	"strconv"
	"strings"

	"github.com/ccevents/ccevents/internal/event"
)

// This file maps SIP endings to the disconnection causes session.delete
// carries (docs/telephony.md has the table): a Q.850 cause in a Reason
// header wins; otherwise a final status code says it.

// ParseReason returns the Q.850 cause of a Reason header value
// (`Q.850;cause=16;text="Normal call clearing"`, RFC 3326), several values
// possibly separated by commas. ok is false when no Q.850 cause is there.
func ParseReason(v string) (code int, ok bool) {
	code, _, ok = parseReason(v)
	return code, ok
}

// parseReason is ParseReason with the Q.850 value's text parameter.
func parseReason(v string) (code int, text string, ok bool) {
	for part := range strings.SplitSeq(v, ",") {
		proto, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(proto), "Q.850") {
			continue
		}
		for p := range strings.SplitSeq(params, ";") {
			name, val, _ := strings.Cut(p, "=")
			val = strings.Trim(strings.TrimSpace(val), `"`)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "cause":
				n, err := strconv.Atoi(val)
				if err != nil || n < 1 || n > 127 {
					return 0, "", false
				}
				code, ok = n, true
			case "text":
				text = val
			}
		}
		return code, text, ok
	}
	return 0, "", false
}

// CauseOfReason is the cause a Reason header value gives. Its Q.850 code
// decides, unless its text names a catalogue cause that this code stands
// for (as ccevents, FreeSWITCH and Kazoo write it: text="MEDIA_TIMEOUT"
// with cause=102), which is then kept exactly.
func CauseOfReason(v string) (event.Cause, bool) {
	code, text, ok := parseReason(v)
	if !ok {
		return "", false
	}
	if c := event.Cause(text); c.Valid() && q850(c) == code {
		return c, true
	}
	return CauseOfQ850(code), true
}

// CauseOfQ850 names a Q.850 cause code. Codes the catalogue lists map to
// themselves; others to their class's general cause (Q.850 table 1).
func CauseOfQ850(code int) event.Cause {
	if name := event.CauseName(code); name != "" && code <= 127 {
		return event.Cause(name)
	}
	switch {
	case code == 3 || code == 2: // no route to destination / transit network
		return event.CauseUnallocatedNumber
	case code == 20: // subscriber absent
		return event.CauseNoUserResponse
	case code <= 31: // normal class
		return event.CauseNormalUnspecified
	case code <= 47: // resource unavailable
		return event.CauseNormalTemporaryFailure
	default: // service or option unavailable, not implemented, invalid message, protocol error
		return event.CauseInterworking
	}
}

// CauseOfStatus maps a final SIP failure status to a cause, after RFC 3398
// section 8.2.6.1 (and FreeSWITCH, which Kazoo follows).
func CauseOfStatus(status int) event.Cause {
	switch status {
	case 404, 485, 604:
		return event.CauseUnallocatedNumber
	case 486, 600:
		return event.CauseUserBusy
	case 408:
		return event.CauseRecoveryOnTimerExpire
	case 480:
		return event.CauseNoUserResponse
	case 403, 603:
		return event.CauseCallRejected
	case 410:
		return event.CauseNormalClearing // gone: RFC 3398 says 22, number changed
	case 484:
		return event.CauseInvalidNumberFormat
	case 487:
		return event.CauseOriginatorCancel
	case 502:
		return event.CauseDestinationOutOfOrder
	case 503:
		return event.CauseNormalCircuitCongestion
	case 504:
		return event.CauseRecoveryOnTimerExpire
	case 500:
		return event.CauseNormalTemporaryFailure
	}
	switch {
	case status >= 400 && status < 500:
		return event.CauseInterworking
	case status >= 500 && status < 600:
		return event.CauseNormalTemporaryFailure
	case status >= 600:
		return event.CauseCallRejected
	}
	return event.CauseNormalUnspecified
}

// statusOfCause is the failure status a call refused with a cause gets.
func statusOfCause(c event.Cause) (int, string) {
	switch c {
	case event.CauseUserBusy, event.CauseNormalCircuitCongestion:
		return 486, "Busy Here"
	case event.CauseUnallocatedNumber:
		return 404, "Not Found"
	case event.CauseNoUserResponse, event.CauseNoAnswer:
		return 480, "Temporarily Unavailable"
	case event.CauseCallRejected:
		return 603, "Decline"
	}
	return 500, "Server Internal Error"
}

// reasonHeader is the Reason header value (RFC 3326) that tells the
// other side why ccevents ended a call: the cause's Q.850 code and, as
// text, its catalogue name. Empty for an invalid cause.
func reasonHeader(c event.Cause) string {
	code := q850(c)
	if code == 0 {
		return ""
	}
	return "Q.850;cause=" + strconv.Itoa(code) + ";text=\"" + string(c) + "\""
}

// q850 is the Q.850 code a cause goes out as. The catalogue's own causes
// beyond Q.850 (FreeSWITCH's) take the nearest Q.850 meaning; 0 for an
// invalid cause.
func q850(c event.Cause) int {
	switch c {
	case event.CauseOriginatorCancel, event.CauseBlindTransfer:
		return 16 // the call ended normally on the other side
	case event.CauseSystemShutdown:
		return 41 // temporary failure: calling again will work
	case event.CauseMediaTimeout, event.CauseAllottedTimeout:
		return 102 // a timer expired
	}
	if code := c.Code(); code >= 1 && code <= 127 {
		return code
	}
	return 0
}
