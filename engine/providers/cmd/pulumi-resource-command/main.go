// pulumi-resource-command is the project's own native stand-in for
// pulumi-command 1.2.1. It implements command:local:Command as
// github.com/pulumi/pulumi-command (tag v1.2.1) does in
// provider/pkg/provider/local/ (command.go, commandController.go,
// commandOutputs.go, base.go) and provider/pkg/provider/common/inputs.go,
// served through pulumi-go-provider v1.3.0's infer/resource.go, whose
// Check/Diff/Create/Update/Delete wrapping decides what the engine sees.
//
// What runs when:
//   - create: `create` (nothing runs in a preview);
//   - an input change: replaces the resource when `triggers` changed, else
//     runs `update`, or `create` again when there is no `update`;
//   - delete: `delete`, with the environment, dir and interpreter of the state.
//
// A command runs under `/bin/sh -c` (or `interpreter`) in `dir` (else the
// provider's working directory), with the provider's environment plus
// `environment`, plus PULUMI_COMMAND_STDOUT/STDERR from the previous run
// unless addPreviousOutputInEnv is false. A command that fails fails the step,
// with its output in the error.
package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"

	"fourlb.local/engine/providers/internal/wire"
)

// version is the pulumi-command release whose Python SDK the project pins;
// bin/install-pulumi sets it from requirements.txt with -ldflags.
var version = "1.2.1"

const commandType = "command:local:Command"

func main() {
	err := provider.Main("command", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		s := &server{}
		if host != nil {
			s.logStatus = func(ctx context.Context, urn, line string) {
				_ = host.LogStatus(ctx, diag.Info, resource.URN(urn), line)
			}
		}
		return s, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	// logStatus shows a line of a command's output in the engine's progress
	// display (nil in tests): the real provider logs each line as an
	// InfoStatus (provider/pkg/provider/util/util.go LogOutput).
	logStatus func(ctx context.Context, urn, line string)
}

// inputKeys are the Command's inputs (common.ResourceInputs and
// local.BaseInputs); the outputs are these plus stdout and stderr.
var inputKeys = []resource.PropertyKey{
	"triggers", "create", "update", "delete",
	"stdin", "logging", "interpreter", "dir", "environment", "assetPaths", "archivePaths", "addPreviousOutputInEnv",
}

func checkType(urn string) error {
	if wire.Type(urn) != commandType {
		return wire.UnknownTypeError("command", urn, commandType)
	}
	return nil
}

func (s *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (s *server) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	// As pulumi-go-provider's provider.Configure answers (provider.go), less
	// AcceptOutputs, which only changes how the engine encodes values.
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true}, nil
}

// Check validates the types of the inputs and returns them unchanged: the
// Command declares no defaults (addPreviousOutputInEnv's "true" is applied
// when running, commandOutputs.go run), so infer's DefaultCheck adds nothing.
func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	news, err := wire.Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var failures []*pulumirpc.CheckFailure
	fail := func(key resource.PropertyKey, format string, args ...any) {
		failures = append(failures, &pulumirpc.CheckFailure{Property: string(key), Reason: fmt.Sprintf(format, args...)})
	}
	for key, v := range news {
		v = wire.Plain(v)
		if v.IsNull() || !wire.Known(v) {
			continue
		}
		switch key {
		case "create", "update", "delete", "stdin", "dir":
			if !v.IsString() {
				fail(key, "%s must be a string, not %s", key, v.TypeString())
			}
		case "addPreviousOutputInEnv":
			if !v.IsBool() {
				fail(key, "%s must be a boolean, not %s", key, v.TypeString())
			}
		case "environment":
			if _, err := wire.StringMap(news, key); err != nil {
				fail(key, "%v", err)
			}
		case "interpreter":
			if _, err := stringList(v); err != nil {
				fail(key, "interpreter: %v", err)
			}
		case "triggers":
			if !v.IsArray() {
				fail(key, "triggers must be a list, not %s", v.TypeString())
			}
		case "logging":
			switch {
			case !v.IsString():
				fail(key, "logging must be a string, not %s", v.TypeString())
			case !map[string]bool{"stdout": true, "stderr": true, "stdoutAndStderr": true, "none": true}[v.StringValue()]:
				fail(key, "logging must be one of stdout, stderr, stdoutAndStderr, none; not %q", v.StringValue())
			}
		case "assetPaths", "archivePaths":
			fail(key, "%s is not supported by the project's command provider", key)
		}
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: failures}, nil
}

// Diff compares the old inputs with the new ones; only a change of triggers
// replaces (common/inputs.go tags it replaceOnChanges; infer's Diff forces a
// replace for such inputs only, since Command implements Update).
func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	news, err := wire.Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	oldInputs, err := wire.Unmarshal(req.GetOldInputs())
	if err != nil {
		return nil, err
	}
	if req.GetOldInputs() == nil {
		// An engine that does not send old inputs: infer rebuilds them from
		// the state's input keys.
		olds, err := wire.Unmarshal(req.GetOlds())
		if err != nil {
			return nil, err
		}
		for _, k := range inputKeys {
			if v, ok := olds[k]; ok {
				oldInputs[k] = v
			}
		}
	}
	// infer drops the engine's "version" and internal "__" keys before diffing.
	for k := range news {
		if k == "version" || strings.HasPrefix(string(k), "__") {
			delete(news, k)
		}
	}
	// As in infer, an unknown new value counts as equal to the old one (see
	// wire.DetailedDiff), so a preview shows no change for it.
	return wire.DiffResponse(wire.DetailedDiff(oldInputs, news), func(k resource.PropertyKey) bool {
		return k == "triggers"
	}), nil
}

// Create runs `create`. Its ID is the resource name plus 8 random hex digits
// (resource.NewUniqueHex(name, 8, 0) in commandController.go Create).
func (s *server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	inputs, err := wire.Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	id, err := resource.NewUniqueHex(resource.URN(req.GetUrn()).Name(), 8, 0)
	if err != nil {
		return nil, err
	}
	outputs := inputs.Copy()
	if req.GetPreview() {
		// Nothing runs; the outputs that are not inputs are unknown (infer's
		// markComputed during a create preview).
		outputs["stdout"] = resource.MakeComputed(resource.NewStringProperty(""))
		outputs["stderr"] = resource.MakeComputed(resource.NewStringProperty(""))
	} else {
		outputs["stdout"], outputs["stderr"] = resource.NewStringProperty(""), resource.NewStringProperty("")
		if err := s.runIfSet(ctx, req.GetUrn(), "create", inputs, outputs); err != nil {
			// The Create fails and nothing is recorded, as in infer (the error
			// is not a ResourceInitFailedError): the next `up` creates again.
			return nil, err
		}
	}
	props, err := wire.Marshal(outputs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

// Update runs `update`, else `create` (commandController.go Update), with the
// new inputs and, in PULUMI_COMMAND_STDOUT/STDERR, the previous outputs.
func (s *server) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	olds, news, err := wire.UnmarshalOldsAndNews(req.GetOlds(), req.GetNews())
	if err != nil {
		return nil, err
	}
	outputs := news.Copy()
	outputs["stdout"], outputs["stderr"] = stringOr(olds, "stdout"), stringOr(olds, "stderr")
	if req.GetPreview() {
		// Every output depends on every input in infer (ensureDefaultComputed)
		// and an input changed, so stdout and stderr are unknown.
		outputs["stdout"] = resource.MakeComputed(resource.NewStringProperty(""))
		outputs["stderr"] = resource.MakeComputed(resource.NewStringProperty(""))
	} else {
		step := resource.PropertyKey("update")
		if _, ok, _ := wire.String(news, "update"); !ok {
			step = "create"
		}
		if err := s.runIfSet(ctx, req.GetUrn(), step, news, outputs); err != nil {
			return nil, err
		}
	}
	props, err := wire.Marshal(outputs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

// Delete runs `delete` with everything taken from the state: its environment,
// dir, interpreter and stdin, and its stdout/stderr in the environment.
func (s *server) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	state, err := wire.Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if err := s.runIfSet(ctx, req.GetUrn(), "delete", state, state.Copy()); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// Read keeps the state as it is, infer's default Read.
func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

// ---- running a command -------------------------------------------------------

// runIfSet runs the command held by the input `step` (create, update or
// delete) if it is set, with the settings of `inputs`; outputs holds the
// previous stdout/stderr and receives the new ones.
func (s *server) runIfSet(ctx context.Context, urn string, step resource.PropertyKey,
	inputs, outputs resource.PropertyMap,
) error {
	command, ok, err := wire.String(inputs, step)
	if err != nil || !ok {
		return err
	}
	args := []string{"/bin/sh", "-c"}
	if v := wire.Plain(inputs["interpreter"]); v.IsArray() && len(v.ArrayValue()) > 0 {
		if args, err = stringList(v); err != nil {
			return err
		}
	}
	args = append(args, command)

	//nolint:gosec // running the user's command is this provider's purpose
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	if cmd.Dir, _, err = wire.String(inputs, "dir"); err != nil {
		return err
	}
	if cmd.Dir == "" {
		if cmd.Dir, err = os.Getwd(); err != nil {
			return err
		}
	}

	environment, err := wire.StringMap(inputs, "environment")
	if err != nil {
		return err
	}
	cmd.Env = os.Environ()
	for k, v := range environment {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if add := wire.Plain(inputs["addPreviousOutputInEnv"]); !add.IsBool() || add.BoolValue() {
		for name, key := range map[string]resource.PropertyKey{
			"PULUMI_COMMAND_STDOUT": "stdout", "PULUMI_COMMAND_STDERR": "stderr",
		} {
			if previous, _, _ := wire.String(outputs, key); previous != "" {
				cmd.Env = append(cmd.Env, name+"="+previous)
			}
		}
	}
	if stdin, _, _ := wire.String(inputs, "stdin"); stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}

	logging, _, _ := wire.String(inputs, "logging")
	var stdout, stderr, both bytes.Buffer
	bothWriter := &lockedWriter{w: &both}
	logReader, logWriter := io.Pipe()
	stdoutTo, stderrTo := []io.Writer{&stdout, bothWriter}, []io.Writer{&stderr, bothWriter}
	if logging == "" || logging == "stdout" || logging == "stdoutAndStderr" {
		stdoutTo = append(stdoutTo, logWriter)
	}
	if logging == "" || logging == "stderr" || logging == "stdoutAndStderr" {
		stderrTo = append(stderrTo, logWriter)
	}
	cmd.Stdout, cmd.Stderr = io.MultiWriter(stdoutTo...), io.MultiWriter(stderrTo...)

	logged := make(chan struct{})
	go func() {
		defer close(logged)
		lines := bufio.NewScanner(logReader)
		for lines.Scan() {
			if s.logStatus != nil {
				s.logStatus(ctx, urn, lines.Text())
			}
		}
		_, _ = io.Copy(io.Discard, logReader) // a line too long for the scanner
	}()
	err = cmd.Run()
	_ = logWriter.Close()
	<-logged

	if err != nil {
		// The same message as commandOutputs.go run: the exit status, the
		// command, then its interleaved stdout and stderr.
		return fmt.Errorf("%w: running %q:\n%s", err, command, both.String())
	}
	outputs["stdout"] = resource.NewStringProperty(strings.TrimSuffix(stdout.String(), "\n"))
	outputs["stderr"] = resource.NewStringProperty(strings.TrimSuffix(stderr.String(), "\n"))
	return nil
}

// lockedWriter lets stdout and stderr, copied by two goroutines, share a buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func stringList(v resource.PropertyValue) ([]string, error) {
	v = wire.Plain(v)
	if !v.IsArray() {
		return nil, fmt.Errorf("must be a list of strings, not %s", v.TypeString())
	}
	out := make([]string, 0, len(v.ArrayValue()))
	for _, e := range v.ArrayValue() {
		e = wire.Plain(e)
		if !e.IsString() {
			return nil, fmt.Errorf("must be a list of strings, found %s", e.TypeString())
		}
		out = append(out, e.StringValue())
	}
	return out, nil
}

func stringOr(m resource.PropertyMap, key resource.PropertyKey) resource.PropertyValue {
	if v, ok := m[key]; ok && !v.IsNull() {
		return v
	}
	return resource.NewStringProperty("")
}
