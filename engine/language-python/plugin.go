package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RunPlugin starts a plugin written in Python: a policy pack (`--policy-pack`, kind "analyzer") or a
// provider/component plugin. The plugin's stdout and stderr stream back to the CLI, which reads the
// plugin's gRPC port from the first line of its stdout, as for any plugin binary.
//
// Three layouts, as with the official host:
//   - a policy pack runs as `python -u -m pulumi.policy <args> <pack dir>`, from the pack's directory;
//   - a directory with a __main__.py runs as `python <dir> <args>`;
//   - a buildable package (pyproject.toml) runs as `python -m pulumi.run.plugin <name> <args>`.
func (h *pythonHost) RunPlugin(req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer) error {
	ctx := server.Context()
	if req.GetAttachDebugger() {
		return status.Error(codes.Unimplemented, "this Python language host cannot start plugins under a debugger")
	}
	isPolicyPack := req.Kind == string(apitype.AnalyzerPlugin)
	opts, tc, err := resolveToolchain(req.Info, !isPolicyPack)
	if err != nil {
		return err
	}

	args, err := pluginCommandLine(ctx, req, opts, tc, isPolicyPack)
	if err != nil {
		return err
	}
	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return err
	}
	// Policy packs have always run from their own directory; other plugins run where the CLI runs.
	cmd.Dir = req.Pwd
	if isPolicyPack {
		cmd.Dir = req.Info.ProgramDirectory
	}

	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()

	// The pulumi-policy library predates the analyzer's ConfigureStack call: it reads the stack from
	// environment variables at start-up. So a proxy (from sdk/v3) answers the engine first, collects
	// the stack configuration, and only then is the pack started, with that configuration in its
	// environment; the proxy then forwards every call to it.
	var proxy *sdk.PolicyProxy
	if isPolicyPack {
		if proxy, stdout, err = sdk.NewPolicyProxy(ctx, stdout); err != nil {
			return fmt.Errorf("could not start the policy pack proxy: %w", err)
		}
		stack, err := proxy.AwaitConfiguration(ctx)
		if err != nil {
			return fmt.Errorf("could not get the stack configuration: %w", err)
		}
		if cmd.Env, err = appendPolicyEnv(cmd.Env, stack); err != nil {
			return err
		}
	}
	// req.Env is the CLI's whole environment; as in the official host it comes after the virtualenv's
	// activation, so its PATH wins (the virtualenv's python is called by absolute path regardless).
	cmd.Env = append(cmd.Env, req.Env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr

	if err := cmd.Start(); err != nil {
		return fmt.Errorf("problem executing plugin program (could not run language executor): %w", err)
	}
	if proxy != nil {
		err = proxy.Attach(ctx, cmd) // returns when the pack exits
	} else {
		err = cmd.Wait()
	}

	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return server.Send(&pulumirpc.RunPluginResponse{
			Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(exitErr.ExitCode())},
		})
	}
	if err != nil {
		return fmt.Errorf("plugin failed: %w", err)
	}
	return closer.Close()
}

func pluginCommandLine(ctx context.Context,
	req *pulumirpc.RunPluginRequest, opts toolchain.PythonOptions, tc toolchain.Toolchain, isPolicyPack bool,
) ([]string, error) {
	dir := req.Info.ProgramDirectory
	if isPolicyPack {
		args := append([]string{"-u", "-m", "pulumi.policy"}, req.Args...)
		return append(args, dir), nil
	}

	_, err := os.Stat(filepath.Join(opts.Root, "__main__.py"))
	hasMainPy := err == nil
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("looking for __main__.py: %w", err)
	}
	if hasMainPy || !hasPluginRunModule(ctx, tc) {
		// An SDK too old to have pulumi.run.plugin can only run a plugin's __main__.py.
		return append([]string{dir}, req.Args...), nil
	}

	buildable, err := toolchain.IsBuildablePackage(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("checking if the plugin is a buildable package: %w", err)
	}
	if !buildable {
		return nil, errors.New("plugin is not runnable: it has neither a __main__.py nor a buildable pyproject.toml")
	}
	pyproject, err := toolchain.LoadPyproject(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("loading pyproject.toml: %w", err)
	}
	args := append([]string{"-m", "pulumi.run.plugin", pyproject.Project.Name}, req.Args...)
	return args, nil
}

func hasPluginRunModule(ctx context.Context, tc toolchain.Toolchain) bool {
	check, err := tc.Command(ctx, "-c", "import pulumi.run.plugin")
	if err != nil {
		return false
	}
	out, err := check.CombinedOutput()
	return err == nil || !strings.Contains(string(out), "ModuleNotFoundError")
}

// appendPolicyEnv adds what the pulumi-policy library reads from its environment.
func appendPolicyEnv(env []string, stack *pulumirpc.AnalyzerStackConfigureRequest) ([]string, error) {
	if stack == nil { // e.g. `pulumi policy publish`: no stack
		return env, nil
	}
	setIfSet := func(key, value string) {
		if value != "" {
			env = append(env, key+"="+value)
		}
	}
	setIfSet("PULUMI_ORGANIZATION", stack.Organization)
	setIfSet("PULUMI_PROJECT", stack.Project)
	setIfSet("PULUMI_STACK", stack.Stack)
	setIfSet("PULUMI_DRY_RUN", strconv.FormatBool(stack.DryRun))
	if stack.Config != nil {
		configJSON, err := json.Marshal(stack.Config)
		if err != nil {
			return nil, fmt.Errorf("could not serialize the stack configuration: %w", err)
		}
		setIfSet("PULUMI_CONFIG", string(configJSON))
	}
	return env, nil
}
