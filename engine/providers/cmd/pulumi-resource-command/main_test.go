package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"fourlb.local/engine/providers/internal/wire"
)

const urn = "urn:pulumi:dev::proj::command:local:Command::conn"

var ctx = context.Background()

func marshal(t *testing.T, m resource.PropertyMap) *structpb.Struct {
	t.Helper()
	s, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unmarshal(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := wire.Unmarshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func inputs(m map[string]any) resource.PropertyMap { return resource.NewPropertyMapFromMap(m) }

func create(t *testing.T, in resource.PropertyMap) (string, resource.PropertyMap) {
	t.Helper()
	resp, err := (&server{}).Create(ctx, &pulumirpc.CreateRequest{Urn: urn, Properties: marshal(t, in)})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return resp.GetId(), unmarshal(t, resp.GetProperties())
}

func update(t *testing.T, state, news resource.PropertyMap) resource.PropertyMap {
	t.Helper()
	resp, err := (&server{}).Update(ctx, &pulumirpc.UpdateRequest{
		Urn: urn, Olds: marshal(t, state), News: marshal(t, news), OldInputs: marshal(t, state),
	})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	return unmarshal(t, resp.GetProperties())
}

func diff(t *testing.T, oldInputs, news resource.PropertyMap) *pulumirpc.DiffResponse {
	t.Helper()
	resp, err := (&server{}).Diff(ctx, &pulumirpc.DiffRequest{
		Urn: urn, Olds: marshal(t, oldInputs), OldInputs: marshal(t, oldInputs), News: marshal(t, news),
	})
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	return resp
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReportsTheVersionThePythonSDKAsksFor(t *testing.T) {
	info, err := (&server{}).GetPluginInfo(ctx, &emptypb.Empty{})
	if err != nil || info.GetVersion() != "1.2.1" {
		t.Fatalf("version %q, %v", info.GetVersion(), err)
	}
}

func TestCreateRunsUnderShWithEnvironmentAndCapturesOutput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	t.Setenv("FROM_ENGINE", "engine")
	id, out := create(t, inputs(map[string]any{
		"create":      `echo hi > "$F"; echo "out $FROM_ENGINE"; echo err >&2`,
		"environment": map[string]any{"F": file},
	}))
	if got := readFile(t, file); got != "hi\n" {
		t.Fatalf("file holds %q", got)
	}
	// One trailing newline is trimmed from each (commandOutputs.go run).
	if out["stdout"].StringValue() != "out engine" || out["stderr"].StringValue() != "err" {
		t.Fatalf("stdout %q stderr %q", out["stdout"].StringValue(), out["stderr"].StringValue())
	}
	if !strings.HasPrefix(id, "conn") || len(id) != len("conn")+8 {
		t.Fatalf("id %q is not the name plus 8 hex digits", id)
	}
	if out["environment"].ObjectValue()["F"].StringValue() != file {
		t.Fatalf("inputs not echoed: %v", out)
	}
}

func TestPreviewRunsNothingAndLeavesOutputsUnknown(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	resp, err := (&server{}).Create(ctx, &pulumirpc.CreateRequest{Urn: urn, Preview: true, Properties: marshal(t,
		inputs(map[string]any{"create": `touch "$F"`, "environment": map[string]any{"F": file}}))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("the preview ran the command: %v", err)
	}
	if out := unmarshal(t, resp.GetProperties()); !out["stdout"].IsComputed() || !out["stderr"].IsComputed() {
		t.Fatalf("outputs %v", out)
	}
}

func TestAFailingCommandFailsTheStepWithItsOutput(t *testing.T) {
	_, err := (&server{}).Create(ctx, &pulumirpc.CreateRequest{Urn: urn, Properties: marshal(t,
		inputs(map[string]any{"create": "echo boom; echo bang >&2; exit 3"}))})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") ||
		!strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "bang") {
		t.Fatalf("error %v", err)
	}
}

func TestDiffUpdatesOnEnvironmentAndReplacesOnlyOnTriggers(t *testing.T) {
	old := inputs(map[string]any{"create": "c", "environment": map[string]any{"F": "a"}, "triggers": []any{"x"}})

	same := diff(t, old, old.Copy())
	if same.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("no change: %v", same)
	}

	env := diff(t, old, inputs(map[string]any{"create": "c", "environment": map[string]any{"F": "b"}, "triggers": []any{"x"}}))
	if env.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || len(env.GetReplaces()) != 0 ||
		env.GetDetailedDiff()["environment.F"].GetKind() != pulumirpc.PropertyDiff_UPDATE {
		t.Fatalf("environment change: %v", env)
	}

	trig := diff(t, old, inputs(map[string]any{"create": "c", "environment": map[string]any{"F": "a"}, "triggers": []any{"y"}}))
	if len(trig.GetReplaces()) != 1 || trig.GetReplaces()[0] != "triggers" || trig.GetDeleteBeforeReplace() ||
		trig.GetDetailedDiff()["triggers[0]"].GetKind() != pulumirpc.PropertyDiff_UPDATE_REPLACE {
		t.Fatalf("triggers change: %v", trig)
	}
}

func TestDiffUsesTheOldInputsNotTheOutputs(t *testing.T) {
	in := inputs(map[string]any{"create": "c"})
	state := in.Copy()
	state["stdout"] = resource.NewStringProperty("printed")
	resp, err := (&server{}).Diff(ctx, &pulumirpc.DiffRequest{
		Urn: urn, Olds: marshal(t, state), OldInputs: marshal(t, in), News: marshal(t, in),
	})
	if err != nil || resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestUpdateRunsUpdateWithThePreviousOutput(t *testing.T) {
	state := inputs(map[string]any{"create": "echo v1", "stdout": "v1", "stderr": ""})
	news := inputs(map[string]any{"create": "echo v1", "update": `echo "$PULUMI_COMMAND_STDOUT-updated"`})
	if out := update(t, state, news); out["stdout"].StringValue() != "v1-updated" {
		t.Fatalf("stdout %q", out["stdout"].StringValue())
	}
}

func TestUpdateWithoutUpdateRunsCreateAgain(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	state := inputs(map[string]any{"create": `echo "$V" > "$F"`, "environment": map[string]any{"F": file, "V": "1"}})
	news := inputs(map[string]any{"create": `echo "$V" > "$F"`, "environment": map[string]any{"F": file, "V": "2"}})
	update(t, state, news)
	if got := readFile(t, file); got != "2\n" {
		t.Fatalf("file holds %q", got)
	}
}

func TestAddPreviousOutputInEnvFalseHidesThePreviousOutput(t *testing.T) {
	state := inputs(map[string]any{"create": "true", "stdout": "v1"})
	news := inputs(map[string]any{"create": `echo "[$PULUMI_COMMAND_STDOUT]"`, "addPreviousOutputInEnv": false})
	if out := update(t, state, news); out["stdout"].StringValue() != "[]" {
		t.Fatalf("stdout %q", out["stdout"].StringValue())
	}
}

func TestDeleteRunsDeleteWithTheStateEnvironmentAndOutput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	state := inputs(map[string]any{
		"create": "unused", "delete": `echo "$PULUMI_COMMAND_STDOUT" > "$F"`,
		"environment": map[string]any{"F": file}, "stdout": "made",
	})
	if _, err := (&server{}).Delete(ctx, &pulumirpc.DeleteRequest{Urn: urn, Id: "conn1", Properties: marshal(t, state)}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, file); got != "made\n" {
		t.Fatalf("file holds %q", got)
	}
}

func TestAFailingDeleteFailsTheStep(t *testing.T) {
	state := inputs(map[string]any{"delete": "exit 1"})
	if _, err := (&server{}).Delete(ctx, &pulumirpc.DeleteRequest{Urn: urn, Properties: marshal(t, state)}); err == nil {
		t.Fatal("a failing delete succeeded")
	}
}

func TestDirInterpreterAndStdin(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, out := create(t, inputs(map[string]any{"create": "pwd", "dir": dir})); out["stdout"].StringValue() != dir {
		t.Errorf("dir: stdout %q", out["stdout"].StringValue())
	}
	if _, out := create(t, inputs(map[string]any{"create": "cat", "stdin": "from stdin"})); out["stdout"].StringValue() != "from stdin" {
		t.Errorf("stdin: stdout %q", out["stdout"].StringValue())
	}
	// The command is the interpreter's last argument.
	if _, out := create(t, inputs(map[string]any{"create": "as-an-argument", "interpreter": []any{"echo", "got"}})); out["stdout"].StringValue() != "got as-an-argument" {
		t.Errorf("interpreter: stdout %q", out["stdout"].StringValue())
	}
}

func TestOutputLinesAreLoggedUnlessLoggingIsNone(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	s := &server{logStatus: func(_ context.Context, _, line string) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, line)
	}}
	for _, logging := range []string{"", "none"} {
		logged = nil
		in := inputs(map[string]any{"create": "echo one; echo two >&2"})
		if logging != "" {
			in["logging"] = resource.NewStringProperty(logging)
		}
		if _, err := s.Create(ctx, &pulumirpc.CreateRequest{Urn: urn, Properties: marshal(t, in)}); err != nil {
			t.Fatal(err)
		}
		want := 2
		if logging == "none" {
			want = 0
		}
		if len(logged) != want {
			t.Errorf("logging %q: logged %q", logging, logged)
		}
	}
}

func TestCheckRejectsWrongTypesAndUnsupportedInputs(t *testing.T) {
	resp, err := (&server{}).Check(ctx, &pulumirpc.CheckRequest{Urn: urn, News: marshal(t, inputs(map[string]any{
		"create": 1, "environment": map[string]any{"A": true}, "assetPaths": []any{"*"}, "logging": "loud",
	}))})
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]bool{}
	for _, f := range resp.GetFailures() {
		failed[f.GetProperty()] = true
	}
	for _, key := range []string{"create", "environment", "assetPaths", "logging"} {
		if !failed[key] {
			t.Errorf("no failure on %s: %v", key, resp.GetFailures())
		}
	}
}

func TestOtherResourceTypesAreAClearError(t *testing.T) {
	other := "urn:pulumi:dev::proj::command:remote:Command::r"
	_, err := (&server{}).Create(ctx, &pulumirpc.CreateRequest{Urn: other, Properties: marshal(t, inputs(map[string]any{"create": "true"}))})
	if err == nil || !strings.Contains(err.Error(), "command:remote:Command") {
		t.Fatalf("error %v", err)
	}
}
