package localstack_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/winktravel/checkout/internal/localstack"
)

// These tests need the real components: they fail (never skip) when `make tools`
// has not been run.

func awsConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
}

func start(t *testing.T, opts localstack.Options) *localstack.Stack {
	t.Helper()
	opts.Log = testLog{t}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	begin := time.Now()
	st, err := localstack.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stack up in %v", time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() { _ = st.Stop() })
	return st
}

// testLog sends the children's output to the test log (shown with -v or on failure).
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestStackServesAndStops(t *testing.T) {
	st := start(t, localstack.Options{WithSecretsManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	endpoints := []string{st.DynamoEndpoint, st.StripeURL, st.SecretsManagerEndpoint}
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" {
			t.Fatalf("endpoint %q: want http://127.0.0.1:PORT", e)
		}
	}

	t.Run("dynamodb", func(t *testing.T) {
		db := dynamodb.NewFromConfig(awsConfig(), func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(st.DynamoEndpoint)
		})
		_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String("localstack-test"),
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest,
		})
		if err != nil {
			t.Fatalf("CreateTable: %v", err)
		}
		out, err := db.ListTables(ctx, &dynamodb.ListTablesInput{})
		if err != nil {
			t.Fatalf("ListTables: %v", err)
		}
		if !slices.Contains(out.TableNames, "localstack-test") {
			t.Fatalf("ListTables = %v, want localstack-test", out.TableNames)
		}
		_, err = db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String("localstack-test"),
			Item:      map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}},
		})
		if err != nil {
			t.Fatalf("PutItem: %v", err)
		}
	})

	t.Run("stripe-mock", func(t *testing.T) {
		form := url.Values{"customer": {"cus_123"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.StripeURL+"/v1/ephemeral_keys", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer sk_test_123")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Stripe-Version", "2023-10-16")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /v1/ephemeral_keys: %s: %s", resp.Status, body)
		}
		var key struct {
			Object string `json:"object"`
			Secret string `json:"secret"`
		}
		if err := json.Unmarshal(body, &key); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
		if key.Object != "ephemeral_key" || key.Secret == "" {
			t.Fatalf("ephemeral key = %s, want an ephemeral_key with a secret", body)
		}
		if key.Secret != localstack.StripeEphemeralKeySecret {
			t.Errorf("secret = %q, want %q", key.Secret, localstack.StripeEphemeralKeySecret)
		}
	})

	t.Run("secretsmanager", func(t *testing.T) {
		sm := secretsmanager.NewFromConfig(awsConfig(), func(o *secretsmanager.Options) {
			o.BaseEndpoint = aws.String(st.SecretsManagerEndpoint)
		})
		_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name:         aws.String("checkout/stripe"),
			SecretString: aws.String(`{"secret_key":"sk_test_123"}`),
		})
		if err != nil {
			t.Fatalf("CreateSecret: %v", err)
		}
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("checkout/stripe")})
		if err != nil {
			t.Fatalf("GetSecretValue: %v", err)
		}
		if got := aws.ToString(out.SecretString); got != `{"secret_key":"sk_test_123"}` {
			t.Fatalf("SecretString = %q", got)
		}
	})

	if err := st.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, e := range endpoints {
		u, _ := url.Parse(e)
		if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", u.Host)
		}
	}
	if err := st.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// Toxiproxy's server answers its API, and a proxy created through it reaches stripe-mock.
func TestToxiproxyStartsAndAnswers(t *testing.T) {
	st := start(t, localstack.Options{WithToxiproxy: true})
	u, err := url.Parse(st.ToxiproxyURL)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" {
		t.Fatalf("ToxiproxyURL %q: want http://127.0.0.1:PORT", st.ToxiproxyURL)
	}

	resp, err := http.Get(st.ToxiproxyURL + "/version")
	if err != nil {
		t.Fatal(err)
	}
	version, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(version) == 0 {
		t.Fatalf("GET /version: %s %q", resp.Status, version)
	}
	t.Logf("toxiproxy version %s", version)

	proxy, err := toxiproxy.NewClient(st.ToxiproxyURL).CreateProxy("stripe", "127.0.0.1:0", strings.TrimPrefix(st.StripeURL, "http://"))
	if err != nil {
		t.Fatalf("create a proxy: %v", err)
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+proxy.Listen+"/v1/customers", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk_test_123")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET through the proxy: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"object"`) {
		t.Fatalf("GET /v1/customers through the proxy: %s %.200s", resp.Status, body)
	}

	if err := st.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, host := range []string{u.Host, proxy.Listen} {
		if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", host)
		}
	}
}

func TestDynamoDataDirKeepsTables(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "dynamo")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for run := range 2 {
		st := start(t, localstack.Options{DynamoDataDir: dataDir})
		db := dynamodb.NewFromConfig(awsConfig(), func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(st.DynamoEndpoint)
		})
		if run == 0 {
			_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
				TableName:            aws.String("kept"),
				AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
				KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
				BillingMode:          types.BillingModePayPerRequest,
			})
			if err != nil {
				t.Fatalf("CreateTable: %v", err)
			}
		} else {
			out, err := db.ListTables(ctx, &dynamodb.ListTablesInput{})
			if err != nil {
				t.Fatalf("ListTables: %v", err)
			}
			if !slices.Contains(out.TableNames, "kept") {
				t.Fatalf("after a restart ListTables = %v, want the table kept in %s", out.TableNames, dataDir)
			}
		}
		if st.SecretsManagerEndpoint != "" {
			t.Errorf("SecretsManagerEndpoint = %q without WithSecretsManager", st.SecretsManagerEndpoint)
		}
		if st.ToxiproxyURL != "" {
			t.Errorf("ToxiproxyURL = %q without WithToxiproxy", st.ToxiproxyURL)
		}
		if err := st.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
}

func TestMissingToolsSayMakeTools(t *testing.T) {
	empty := t.TempDir()
	t.Setenv(localstack.EnvToolsDir, empty)
	if dir, err := localstack.ToolsDir(); err != nil || dir != empty {
		t.Fatalf("ToolsDir() = %q, %v; want %q", dir, err, empty)
	}
	_, err := localstack.Start(context.Background(), localstack.Options{})
	if err == nil || !strings.Contains(err.Error(), "run `make tools`") {
		t.Fatalf("Start with empty tools dir: err = %v, want one that says to run `make tools`", err)
	}

	t.Setenv(localstack.EnvToolsDir, filepath.Join(empty, "nope"))
	if _, err := localstack.ToolsDir(); err == nil || !strings.Contains(err.Error(), "run `make tools`") {
		t.Fatalf("ToolsDir() with a missing dir: err = %v, want one that says to run `make tools`", err)
	}
}

func TestToolsDirDefaultsToModuleRoot(t *testing.T) {
	t.Setenv(localstack.EnvToolsDir, "")
	os.Unsetenv(localstack.EnvToolsDir)
	dir, err := localstack.ToolsDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "go.mod")); err != nil || filepath.Base(dir) != ".tools" {
		t.Fatalf("ToolsDir() = %q, want .tools beside go.mod", dir)
	}
}

// A fixed port that another server already answers on fails the start at once, naming the
// component and the port, instead of the probe taking that server for the child.
func TestPortInUseFailsFast(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"TableNames":[],"object":"list"}`) // whatever a probe might want
	}))
	defer other.Close()
	port := other.Listener.Addr().(*net.TCPAddr).Port

	begin := time.Now()
	st, err := localstack.Start(context.Background(), localstack.Options{StripePort: port})
	if err == nil {
		_ = st.Stop()
		t.Fatalf("Start on a taken stripe-mock port succeeded")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "localstack: stripe-mock: port "+strconv.Itoa(port)) || !strings.Contains(msg, "address already in use") {
		t.Fatalf("Start on a taken port: err = %v, want stripe-mock's port named as in use", err)
	}
	if strings.Contains(msg, "dynamodb") {
		t.Errorf("error also blames dynamodb, which was never started: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("Start took %v to fail", d)
	}
}

// A stack killed with SIGKILL (make run under kill -9) cannot remove its temp folder: the next
// start removes the folders of stacks whose process is gone, and leaves a running one's.
func TestStartRemovesTheFoldersOfKilledStacks(t *testing.T) {
	tmp, err := os.MkdirTemp("", "lst") // short: stripe-mock's socket path must fit a sockaddr
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(tmp, "localstack-"+strconv.Itoa(gone.Process.Pid)+"-123456")
	running := filepath.Join(tmp, "localstack-"+strconv.Itoa(os.Getppid())+"-654321")
	other := filepath.Join(tmp, "localstack-unrelated")
	for _, dir := range []string{stale, running, other} {
		if err := os.MkdirAll(filepath.Join(dir, "sqlite"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stack, err := localstack.Start(ctx, localstack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Stop()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the killed stack's folder is still there (%v)", err)
	}
	for _, dir := range []string{running, other} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s was removed: %v", dir, err)
		}
	}
}
