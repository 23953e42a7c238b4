package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nkeys"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func newNkeyCommand(stdout io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("ccevents nkey", flag.ContinueOnError)
	return &ffcli.Command{
		Name:       "nkey",
		ShortUsage: "ccevents nkey FILE",
		ShortHelp:  "create a NATS identity (nkey) for a ccevents role or a producer",
		LongHelp: "Writes a new NATS user nkey seed to FILE (mode 0600; an existing FILE is\n" +
			"never overwritten) and prints its public key, which goes into the NATS\n" +
			"server's configuration (docs/operations.md). Give FILE to ccevents with\n" +
			"--nats-nkey, or to a producer's NATS client.",
		FlagSet: fs,
		Exec: func(_ context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("give the seed file to write: ccevents nkey /etc/ccevents/nats-gateway.nk")
			}
			kp, err := nkeys.CreateUser()
			if err != nil {
				return fmt.Errorf("create an nkey: %w", err)
			}
			seed, err := kp.Seed()
			if err != nil {
				return err
			}
			pub, err := kp.PublicKey()
			if err != nil {
				return err
			}
			f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("write the seed: %w", err)
			}
			if _, err := f.Write(append(seed, '\n')); err != nil {
				f.Close()
				return fmt.Errorf("write the seed: %w", err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("write the seed: %w", err)
			}
			_, err = fmt.Fprintln(stdout, pub)
			return err
		},
	}
}
