package loadtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nkeys"
)

// PeerAuth is the credential the NATS peer's connections present: the
// embedded server of ccevents requires one once it listens. An nkey seed
// signs the nonce of the server's INFO; a user and password are sent as
// they are. The zero value connects anonymously.
type PeerAuth struct {
	NkeySeed string `json:"nkey_seed,omitempty"`
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
}

// natsConnect is the CONNECT a peer connection sends.
type natsConnect struct {
	Verbose      bool   `json:"verbose"`
	Pedantic     bool   `json:"pedantic"`
	Lang         string `json:"lang"`
	Version      string `json:"version"`
	Protocol     int    `json:"protocol"`
	Echo         bool   `json:"echo"`
	Headers      bool   `json:"headers"`
	NoResponders bool   `json:"no_responders"`
	Nkey         string `json:"nkey,omitempty"`
	Sig          string `json:"sig,omitempty"`
	User         string `json:"user,omitempty"`
	Pass         string `json:"pass,omitempty"`
}

// connectLine answers the server's INFO message with the CONNECT line that
// authenticates as a.
func (a *PeerAuth) connectLine(info []byte) ([]byte, error) {
	cmd := natsConnect{Lang: "ccevents-bench", Version: "1", Protocol: 1}
	if a != nil && a.NkeySeed != "" {
		var in struct {
			Nonce string `json:"nonce"`
		}
		body := bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(info), []byte("INFO")))
		if err := json.Unmarshal(body, &in); err != nil || in.Nonce == "" {
			return nil, fmt.Errorf("the NATS peer's INFO carries no nonce to sign (%.80s)", info)
		}
		kp, err := nkeys.FromSeed([]byte(a.NkeySeed))
		if err != nil {
			return nil, fmt.Errorf("peer nkey seed: %w", err)
		}
		sig, err := kp.Sign([]byte(in.Nonce))
		if err != nil {
			return nil, fmt.Errorf("sign the NATS peer's nonce: %w", err)
		}
		if cmd.Nkey, err = kp.PublicKey(); err != nil {
			return nil, err
		}
		cmd.Sig = base64.RawURLEncoding.EncodeToString(sig)
	} else if a != nil {
		cmd.User, cmd.Pass = a.User, a.Password
	}
	line, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	return append(append([]byte("CONNECT "), line...), "\r\n"...), nil
}
