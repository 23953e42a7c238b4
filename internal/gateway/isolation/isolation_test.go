package isolation

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ccevents/ccevents/internal/api"
	"github.com/ccevents/ccevents/internal/gateway"
)

// TestNoWayToSeeAnotherAccountsEvents tries every way we know for an
// attacker holding a valid token of one account to read, or write, the
// events of another, and checks each is refused and that in the end the
// attacker received only its own events and the victim only its own.
func TestNoWayToSeeAnotherAccountsEvents(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	attacker := e.account("")
	victim := e.account("")
	attackerChild := e.account(attacker)
	tokA, tokV, tokChild := e.token(attacker), e.token(victim), e.token(attackerChild)

	apiSrv, err := api.New(api.Config{Auth: e.auth, Publisher: e.bus})
	if err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewServer(apiSrv.Handler())
	defer rest.Close()

	own := "qubicle.*." + attacker + ".#"
	a := e.dial()
	a.Subscribe(tokA, attacker, own)
	v := e.dial()
	v.Subscribe(tokV, victim, "qubicle.*."+victim+".#")

	upper := strings.ToUpper(victim)
	// A fullwidth first character: NFKC would fold it to the victim's id.
	lookalike := string(rune(0xFF00+int(victim[0])-0x20)) + victim[1:]
	forged := forgeAccount(t, tokA, victim)

	sub := func(token, account string, bindings ...any) string {
		p, _ := json.Marshal(map[string]any{"action": "subscribe", "request_id": "x", "auth_token": token,
			"data": map[string]any{"account_id": account, "bindings": bindings}})
		return string(p)
	}
	attacks := []struct {
		name string
		send string
	}{
		{"victim's account with the attacker's token", sub(tokA, victim, "qubicle.queue."+victim+".*")},
		{"binding of the victim under the attacker's account", sub(tokA, attacker, "qubicle.queue."+victim+".*")},
		{"wildcard account", sub(tokA, attacker, "qubicle.queue.*.Q1")},
		{"wildcard account and family", sub(tokA, attacker, "qubicle.*.*.*")},
		{"# at the account position", sub(tokA, attacker, "qubicle.queue.#")},
		{"# after qubicle", sub(tokA, attacker, "qubicle.#")},
		{"# alone", sub(tokA, attacker, "#")},
		{"NATS full wildcard", sub(tokA, attacker, "qubicle.queue.>")},
		{"NATS full wildcard in the account", sub(tokA, attacker, "qubicle.queue."+attacker+">")},
		{"upper-case victim id", sub(tokA, upper, "qubicle.queue."+upper+".*")},
		{"upper-case victim id in the binding only", sub(tokA, attacker, "qubicle.queue."+upper+".*")},
		{"fullwidth look-alike of the victim id", sub(tokA, lookalike, "qubicle.queue."+lookalike+".*")},
		{"fullwidth look-alike in the binding only", sub(tokA, attacker, "qubicle.queue."+lookalike+".*")},
		{"upper-case family", sub(tokA, attacker, "qubicle.QUEUE."+victim+".*")},
		{"dot-dot segment", sub(tokA, attacker, "qubicle.queue."+attacker+".."+victim+".*")},
		{"slash path", sub(tokA, attacker, "qubicle.queue."+attacker+"/../"+victim+".*")},
		{"percent-encoded dots", sub(tokA, attacker, "qubicle.queue."+attacker+"%2e%2e"+victim)},
		{"percent-encoded dots as the account", sub(tokA, attacker, "qubicle.queue.%2e%2e."+victim)},
		{"NUL inside the account", sub(tokA, attacker, "qubicle.queue."+attacker+"\x00"+victim+".*")},
		{"trailing space after the victim", sub(tokA, victim+" ", "qubicle.queue."+victim+" .*")},
		{"path in account_id", sub(tokA, attacker+"/../"+victim, "qubicle.queue."+victim+".*")},
		{"child's token on its parent", sub(tokChild, attacker, "qubicle.queue."+attacker+".*")},
		{"token re-signed for the victim", sub(forged, victim, "qubicle.queue."+victim+".*")},
		{"unsigned token for the victim", sub(unsignedToken(victim), victim, "qubicle.queue."+victim+".*")},
		{"resume from sequence 0 in the victim's account", sub(tokA, attacker,
			map[string]any{"binding": "qubicle.queue." + victim + ".*", "since": map[string]any{"sequence": 0}})},
		{"duplicate account_id keys, victim last", fmt.Sprintf(`{"action":"subscribe","request_id":"x","auth_token":%q,"data":{"account_id":%q,"account_id":%q,"binding":"qubicle.queue.%s.*"}}`,
			tokA, attacker, victim, victim)},
		{"duplicate account_id keys, victim first", fmt.Sprintf(`{"action":"subscribe","request_id":"x","auth_token":%q,"data":{"account_id":%q,"account_id":%q,"binding":"qubicle.queue.%s.*"}}`,
			tokA, victim, attacker, victim)},
		{"refresh with the victim's token", fmt.Sprintf(`{"action":"refresh","request_id":"x","auth_token":%q}`, tokV)},
	}
	for _, at := range attacks {
		t.Run(at.name, func(t *testing.T) {
			a.SetTest(t)
			a.Send(at.send)
			m, f := a.Reply()
			if m.Status != "error" || f.Message == "" {
				t.Fatalf("not refused: %s", m.Raw)
			}
			if f.Subscribed != nil && !equalStrings(f.Subscribed, own) {
				t.Fatalf("subscriptions changed to %v", f.Subscribed)
			}
		})
	}
	a.SetTest(t)

	publish := func(token, account, routingKey string, payload map[string]any) (int, string) {
		body, _ := json.Marshal(map[string]any{"data": map[string]any{"routing_key": routingKey, "payload": payload}})
		req, _ := http.NewRequest(http.MethodPost, rest.URL+"/v2/accounts/"+account+"/events", bytes.NewReader(body))
		req.Header.Set("X-Auth-Token", token)
		// Redirects are followed, as an attacker's client would: a path
		// the router cleans up must still be refused where it leads.
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		defer resp.Body.Close()
		p, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(p)
	}
	create := func() map[string]any {
		return map[string]any{"queue_name": "Support", "strategy": "most_idle", "max_wait_s": 600, "max_size": 50, "offer_timeout_s": 20, "wrapup_s": 30}
	}
	withAccount := func(acc string) map[string]any {
		p := create()
		p["account_id"] = acc
		return p
	}
	writes := []struct {
		name, token, pathAccount, routingKey string
		payload                              map[string]any
	}{
		{"into the victim's account with the attacker's token", tokA, victim, "qubicle.queue." + victim + ".Q9.create", create()},
		{"routing key of the victim under the attacker's account", tokA, attacker, "qubicle.queue." + victim + ".Q9.create", create()},
		{"payload naming the victim under the attacker's routing key", tokA, attacker, "qubicle.queue." + attacker + ".Q9.create", withAccount(victim)},
		{"child's token into its parent", tokChild, attacker, "qubicle.queue." + attacker + ".Q9.create", create()},
		{"upper-case victim in the path", tokA, upper, "qubicle.queue." + upper + ".Q9.create", create()},
		{"dot-dot in the path", tokA, attacker + "/../" + victim, "qubicle.queue." + victim + ".Q9.create", create()},
		{"percent-encoded dot-dot in the path", tokA, attacker + "/%2e%2e/" + victim, "qubicle.queue." + victim + ".Q9.create", create()},
		{"wildcard routing key", tokA, attacker, "qubicle.queue.*.Q9.create", create()},
		{"re-signed token", forged, victim, "qubicle.queue." + victim + ".Q9.create", create()},
	}
	for _, w := range writes {
		t.Run("REST "+w.name, func(t *testing.T) {
			code, body := publish(w.token, w.pathAccount, w.routingKey, w.payload)
			if code/100 == 2 {
				t.Fatalf("publish answered %d %s", code, body)
			}
		})
	}

	// What legitimately happens in each account.
	if code, body := publish(tokV, victim, "qubicle.queue."+victim+".QV.create", create()); code != http.StatusCreated {
		t.Fatalf("victim's own publish: %d %s", code, body)
	}
	if code, body := publish(tokA, attacker, "qubicle.queue."+attacker+".QA.create", create()); code != http.StatusCreated {
		t.Fatalf("attacker's own publish: %d %s", code, body)
	}
	e.publish("qubicle.session." + victim + ".S1.create")
	e.publish("qubicle.queue." + attacker + ".END.delete")
	e.publish("qubicle.queue." + victim + ".END.delete")

	if got, want := a.EventsUntil("qubicle.queue."+attacker+".END.delete"), []string{"qubicle.queue." + attacker + ".QA.create"}; !equalStrings(got, want...) {
		t.Fatalf("the attacker received %v, want only %v", got, want)
	}
	if got, want := v.EventsUntil("qubicle.queue."+victim+".END.delete"),
		[]string{"qubicle.queue." + victim + ".QV.create", "qubicle.session." + victim + ".S1.create"}; !equalStrings(got, want...) {
		t.Fatalf("the victim received %v, want only %v", got, want)
	}
}

// forgeAccount rewrites a token's account claim, keeping its signature.
func forgeAccount(t *testing.T, token, account string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(p, &claims); err != nil {
		t.Fatal(err)
	}
	claims["account_id"] = account
	p, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

// unsignedToken is a JWT with "alg":"none" claiming account.
func unsignedToken(account string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(fmt.Appendf(nil, `{"account_id":%q,"exp":4102444800}`, account)) + "."
}
