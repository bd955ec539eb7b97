package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/winktravel/checkout/internal/localstack"
	"github.com/winktravel/checkout/internal/sample"
	"github.com/winktravel/checkout/internal/testenv"
)

// serverPeakRSS starts the local server (cmd/local, built as bin) on free ports, sends it
// batches of n checkouts at once, each of a fresh cart of a new traveller (the heaviest flow),
// and returns the server process's peak resident set size in bytes (VmHWM). DynamoDB Local and
// stripe-mock are its children, separate processes, and do not count.
func serverPeakRSS(ctx context.Context, root, bin string, batches, n int) (int64, error) {
	ports, err := freePorts(3)
	if err != nil {
		return 0, err
	}
	port, dynamoPort, stripePort := ports[0], ports[1], ports[2]
	var stderr testenv.LogBuffer
	cmd := exec.Command(bin)
	cmd.Dir = root // it reads template.yaml
	cmd.Env = append(os.Environ(),
		"LOCAL_PORT="+strconv.Itoa(port), "LOCAL_DYNAMODB_PORT="+strconv.Itoa(dynamoPort),
		"LOCAL_STRIPE_PORT="+strconv.Itoa(stripePort), "LOCAL_DATA_DIR=", "LOG_LEVEL=INFO")
	cmd.Stderr = &stderr
	cmd.SysProcAttr = dieWithParent()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		// SIGTERM lets it stop DynamoDB Local and stripe-mock; SIGKILL if it takes too long
		// (its children die with it anyway).
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Ready.") {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-ready:
	case <-exited:
		return 0, fmt.Errorf("the local server exited before it was ready:\n%s", stderr.String())
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("the local server was not ready within 2 minutes:\n%s", stderr.String())
	}

	db := localstack.DynamoDBClient("http://127.0.0.1:" + strconv.Itoa(dynamoPort))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: time.Minute}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/api/checkout"
	runID := randomID()[:8]
	expires := time.Now().Add(24 * time.Hour)
	for b := range batches {
		owners := make([]string, n)
		cartIDs := make([]string, n)
		for i := range n {
			owners[i] = fmt.Sprintf("rss-%s-traveller-%d-%d", runID, b, i)
			cartIDs[i] = fmt.Sprintf("rss-%s-cart-%d-%d", runID, b, i)
			if err := sample.PutCart(ctx, db, "carts", sample.NewCart(cartIDs[i], owners[i], benchCurrency, benchRooms, expires)); err != nil {
				return 0, err
			}
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = post(ctx, client, url, owners[i], cartIDs[i]) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return 0, fmt.Errorf("checkout through the local server: %w", err)
		}
	}
	kb, err := vmHWM(cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	return kb * 1024, nil
}

// post checks out a cart through the local server with an unsigned JWT naming the owner.
func post(ctx context.Context, client *http.Client, url, owner, cartID string) error {
	body := `{"shoppingCartIdentifier":"` + cartID + `","redirectUrl":"` + sample.RedirectURL + `"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+unsignedToken(owner))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cart %s: %s: %s", cartID, resp.Status, answer)
	}
	return nil
}

// unsignedToken is a JWT with alg "none" whose sub is owner: the local server decodes the
// claims without checking a signature.
func unsignedToken(owner string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(`{"sub":"`+owner+`"}`)) + "."
}

// freePorts returns n distinct free ports. DynamoDB Local binds every interface, so they are
// checked there.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
