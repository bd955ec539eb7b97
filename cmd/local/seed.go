package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	domain "github.com/winktravel/checkout/internal/checkout"
	"github.com/winktravel/checkout/internal/config"
	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/sample"
)

// seedCommand is `local seed`: it writes one new open cart, under a generated id, straight into
// the DynamoDB Local of a running local server (same LOCAL_DYNAMODB_PORT and CARTS_TABLE), then
// prints its id and a curl that checks it out. It returns the exit code.
func seedCommand(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("local seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	owner := fs.String("owner", sample.Alice, "owner of the cart: the `sub` of the traveller's JWT")
	rooms := fs.Int("items", 2, fmt.Sprintf("number of rooms (1-%d)", domain.MaxItems))
	currency := fs.String("currency", "EUR", "ISO 4217 currency of the cart")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: local seed [-owner sub] [-items n] [-currency code]\n\n"+
			"Adds an open cart, expiring in a week, to the running local server's carts table.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := seed(getenv, stdout, strings.TrimSpace(*owner), *rooms, strings.ToUpper(strings.TrimSpace(*currency))); err != nil {
		fmt.Fprintln(stderr, "local seed:", err)
		return 1
	}
	return 0
}

func seed(getenv func(string) string, stdout io.Writer, owner string, rooms int, currency string) error {
	switch {
	case owner == "":
		return errors.New("-owner must not be empty")
	case rooms < 1 || rooms > domain.MaxItems:
		return fmt.Errorf("-items must be 1 to %d (a checkout holds at most %d rooms), not %d", domain.MaxItems, domain.MaxItems, rooms)
	case len(currency) != 3 || strings.Trim(currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "":
		return fmt.Errorf("-currency must be a three-letter ISO 4217 code, not %q", currency)
	}
	s, cfg, dynamoURL, err := runningServer(getenv)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cart := sample.NewCart(newCartID(owner), owner, currency, rooms, time.Now().Add(7*24*time.Hour))
	if err := sample.PutCart(ctx, localstack.DynamoDBClient(dynamoURL), cfg.CartsTable, cart); err != nil {
		if _, ok := errors.AsType[*types.ResourceNotFoundException](err); ok {
			return fmt.Errorf("DynamoDB on %s has no table %s: is it the one `make run` started (with the same CARTS_TABLE)?", dynamoURL, cfg.CartsTable)
		}
		return err
	}
	fmt.Fprintf(stdout, "Added cart %s: %d room(s) in %s, owner %s, expires in 7 days (table %s).\n\n%s\n",
		cart.ID, rooms, currency, owner, cfg.CartsTable,
		curlCommand(loopbackURL(s.port)+routePath, ownerToken(owner, cfg.IdentityClaim), cart.ID))
	return nil
}

// runningServer finds the DynamoDB Local of a running `make run` (same settings) and the
// function's configuration, for the commands that act on it.
func runningServer(getenv func(string) string) (settings, config.Config, string, error) {
	s, err := readSettings(getenv)
	if err != nil {
		return s, config.Config{}, "", err
	}
	dynamoURL := loopbackURL(s.dynamoPort)
	cfg, err := config.FromEnv(functionEnv(getenv, dynamoURL, loopbackURL(s.stripePort)))
	if err != nil {
		return s, cfg, "", fmt.Errorf("invalid setting: %w", err)
	}
	// Without this check the SDK would retry a refused connection for a while before failing.
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.dynamoPort), 2*time.Second)
	if err != nil {
		return s, cfg, "", fmt.Errorf("nothing answers on %s: start `make run` first (or set %s to its DynamoDB Local port)", dynamoURL, envDynamoPort)
	}
	conn.Close()
	return s, cfg, dynamoURL, nil
}

// newCartID returns cart-<owner>-<8 hex digits>, e.g. cart-alice-3f9a1c2b for traveller-alice:
// readable in listings, and within the function's identifier rule (letters, digits, -_.:).
func newCartID(owner string) string {
	name := []byte(strings.TrimPrefix(owner, "traveller-"))
	for i, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			name[i] = '-'
		}
	}
	if len(name) > 64 {
		name = name[:64]
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails
	return "cart-" + string(name) + "-" + hex.EncodeToString(b[:])
}
