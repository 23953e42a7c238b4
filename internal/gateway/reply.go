package gateway

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"

	"github.com/gobwas/ws"

	"github.com/ccevents/ccevents/internal/shorten"
	"github.com/ccevents/ccevents/protocol"
)

// How the gateway answers: every request gets exactly one reply (package
// protocol defines its shape), queued like any other frame.

// sendReply queues a reply frame. A request without a request_id gets a
// generated one, as Kazoo does: 32 hex characters.
func (c *conn) sendReply(id protocol.RequestID, status protocol.Status, data any) {
	if id.IsZero() {
		id = generateRequestID()
	}
	c.enqueue(jsonFrame(protocol.Reply{Action: protocol.ReplyAction, RequestID: id, Status: status, Data: data}))
}

// generateRequestID returns a random request id as a JSON string. It only
// has to tell one reply from another in logs, not be unguessable.
func generateRequestID() protocol.RequestID {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	id := make([]byte, 34)
	id[0], id[33] = '"', '"'
	hex.Encode(id[1:33], raw[:])
	return id
}

// replyError answers a request that failed as a whole, counting its kind.
func (c *conn) replyError(id protocol.RequestID, err *protocol.Error) {
	c.srv.m.error(err.Kind)
	c.sendReply(id, protocol.StatusError, err.Data())
}

// replySubscription answers subscribe or unsubscribe: status error when any
// part failed, with what is active either way.
func (c *conn) replySubscription(id protocol.RequestID, data protocol.SubscriptionData) {
	if data.Subscribed == nil {
		data.Subscribed = c.subscribed.texts()
	}
	status := protocol.StatusSuccess
	if len(data.Errors) > 0 {
		status = protocol.StatusError
		data.Message = data.Errors[0]
	}
	c.sendReply(id, status, data)
}

// quoteShort quotes user input for an error message, cut to a readable length.
func quoteShort(s string) string { return shorten.Quote(s, 64) }

// jsonFrame encodes v as a complete text frame.
func jsonFrame(v any) []byte {
	p, err := json.Marshal(v)
	if err != nil {
		// Only the gateway's own types come here, and they marshal; the
		// client still gets an answer if that ever changes.
		p = []byte(`{"action":"reply","status":"error","data":{"errors":["the gateway could not encode its reply"],"message":"the gateway could not encode its reply"}}`)
	}
	return controlFrame(ws.OpText, p)
}

// controlFrame returns a complete unmasked frame carrying p.
func controlFrame(op ws.OpCode, p []byte) []byte {
	dst := make([]byte, 0, frameHeaderLen(len(p))+len(p))
	dst = appendFrameHeader(dst, op, len(p))
	return append(dst, p...)
}
