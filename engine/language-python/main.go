// Command pulumi-language-python is this project's own Python language host: the plugin the Pulumi CLI
// starts to run a Python program. The official host's Go module is not obtainable here, so this is a
// small rewrite on top of pieces that sdk/v3 exports (the gRPC protocol, the virtualenv/pip toolchain).
//
// The host does not run Python code itself. For each Run it starts
//
//	<python of the project's virtualenv> pulumi-language-python-exec --monitor ... <entry point>
//
// where pulumi-language-python-exec is the runtime's entry script from the Python SDK's distribution,
// installed next to this binary. That script connects back to the engine and the resource monitor.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	// The CLI finds the entry script by this name in the directory of the host binary.
	execScriptName = "pulumi-language-python-exec"

	// The entry script exits with this code after it has already reported the error to the engine
	// (a traceback, a RunError): the host must then not add a second, vaguer error of its own.
	exitCodeErrorAlreadyReported = 32

	// How often the host checks that the engine that started it is still alive.
	engineHealthInterval = 5 * time.Minute
)

func main() {
	// The CLI passes --tracing, -v and --logtostderr (the last two are glog's flags, registered by the
	// logging package) before the engine's address, the one positional argument.
	tracingEndpoint := flag.String("tracing", "", "Zipkin-compatible endpoint, handed on to the Python runtime")
	showVersion := flag.Bool("version", false, "print the version and exit")
	executorOverride := flag.String("use-executor", "", "path of the entry script, instead of the one next to this binary")
	flag.Parse()

	if *showVersion {
		fmt.Println(hostVersion())
		return
	}
	logging.InitLogging(false, 0, false)

	execScript, err := findExecScript(*executorOverride)
	if err != nil {
		fail(err)
	}

	// Stop serving on Ctrl-C, or when the engine stops answering health checks.
	ctx, shutdown := signal.NotifyContext(context.Background(), os.Interrupt)
	stopServing := make(chan bool)
	go func() {
		<-ctx.Done()
		shutdown()
		close(stopServing)
	}()

	engineAddress := flag.Arg(0)
	if engineAddress != "" {
		if err := rpcutil.Healthcheck(ctx, engineAddress, engineHealthInterval, shutdown); err != nil {
			fail(fmt.Errorf("could not start the engine health check: %w", err))
		}
	}

	host := newPythonHost(execScript, engineAddress, *tracingEndpoint)
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stopServing,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		fail(fmt.Errorf("could not start the language host's gRPC server: %w", err))
	}

	// The CLI reads the first line of our stdout to learn where to connect.
	fmt.Printf("%d\n", handle.Port)

	if err := <-handle.Done; err != nil {
		fail(fmt.Errorf("language host stopped serving: %w", err))
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "error: %v\n", err)
	os.Exit(1)
}

// hostVersion reports the version of sdk/v3 this host was built against, since the host speaks that
// version's protocol. (The official host gets its version stamped in by the release build instead.)
func hostVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/pulumi/pulumi/sdk/v3" {
				return strings.TrimPrefix(dep.Version, "v")
			}
		}
	}
	return ""
}

func findExecScript(override string) (string, error) {
	if override != "" {
		return override, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("could not determine this executable's path: %w", err)
	}
	script := filepath.Join(filepath.Dir(self), execScriptName)
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("missing the Python entry script %s: %w", script, err)
	}
	return script, nil
}

type pythonHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	execScript      string
	tracingEndpoint string

	mu            sync.Mutex
	engineAddress string             // from the command line, or from Handshake when the CLI attaches to us
	runs          context.Context    // parent of the running programs' contexts; Cancel ends it
	cancelRuns    context.CancelFunc // ends runs
}

func newPythonHost(execScript, engineAddress, tracingEndpoint string) *pythonHost {
	runs, cancelRuns := context.WithCancel(context.Background())
	return &pythonHost{
		execScript:      execScript,
		engineAddress:   engineAddress,
		tracingEndpoint: tracingEndpoint,
		runs:            runs,
		cancelRuns:      cancelRuns,
	}
}

func (h *pythonHost) engine() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.engineAddress
}

func (h *pythonHost) runsContext() context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.runs
}

// pythonOptions reads Pulumi.yaml's `runtime.options` (toolchain, virtualenv, typechecker). A relative
// virtualenv is taken relative to the project root by the toolchain package.
func pythonOptions(info *pulumirpc.ProgramInfo, isPlugin bool) (toolchain.PythonOptions, error) {
	if info == nil {
		return toolchain.PythonOptions{}, errors.New("the request carries no program info")
	}
	opts := toolchain.PythonOptions{Root: info.RootDirectory, ProgramDir: info.ProgramDirectory}
	raw := info.Options.AsMap()

	stringOption := func(key string) (string, error) {
		v, ok := raw[key]
		if !ok {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("the %s option must be a string", key)
		}
		return s, nil
	}

	var err error
	if opts.Virtualenv, err = stringOption("virtualenv"); err != nil {
		return opts, err
	}

	tc, err := stringOption("toolchain")
	if err != nil {
		return opts, err
	}
	switch tc {
	case "":
		opts.Toolchain = toolchain.Auto
	case "pip":
		opts.Toolchain = toolchain.Pip
	case "poetry":
		opts.Toolchain = toolchain.Poetry
	case "uv":
		opts.Toolchain = toolchain.Uv
	default:
		return opts, fmt.Errorf("unsupported toolchain option: %s", tc)
	}

	checker, err := stringOption("typechecker")
	if err != nil {
		return opts, err
	}
	switch checker {
	case "":
		opts.Typechecker = toolchain.TypeCheckerNone
	case "mypy":
		opts.Typechecker = toolchain.TypeCheckerMypy
	case "pyright":
		opts.Typechecker = toolchain.TypeCheckerPyright
	default:
		return opts, fmt.Errorf("unsupported typechecker option: %s", checker)
	}

	// Programs may still run on the ambient Python, but plugins are always given a virtualenv.
	if isPlugin && (opts.Toolchain == toolchain.Pip || opts.Toolchain == toolchain.Auto) && opts.Virtualenv == "" {
		opts.Virtualenv = "venv"
	}
	return opts, nil
}

func resolveToolchain(info *pulumirpc.ProgramInfo, isPlugin bool) (toolchain.PythonOptions, toolchain.Toolchain, error) {
	opts, err := pythonOptions(info, isPlugin)
	if err != nil {
		return opts, nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	return opts, tc, err
}

// Handshake is only called when the CLI attaches to an already running host (PULUMI_DEBUG_LANGUAGES);
// a host the CLI starts itself gets the engine's address on its command line instead. An attached
// host was started by hand and serves one CLI session after another, so it does not shut down when
// this session's engine goes away.
func (h *pythonHost) Handshake(
	ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.engineAddress = req.EngineAddress
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

// GetRequiredPackages makes sure the virtualenv exists (creating it and installing requirements.txt if
// it does not, as the official host does), then reports no packages: this project's provider plugins
// are found on PATH, so nothing has to be installed ahead of the run, and the engine loads each
// provider when the program first registers one of its resources.
func (h *pythonHost) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	_, tc, err := resolveToolchain(req.Info, false)
	if err != nil {
		return nil, err
	}
	progress := h.engineLog(ctx)
	if err := tc.EnsureVenv(ctx, req.Info.ProgramDirectory, false, true, progress, progress); err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: []*pulumirpc.PackageDependency{}}, nil
}

func (h *pythonHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: hostVersion()}, nil
}

// Cancel interrupts the programs running now. The CLI also calls it whenever it is done with a host,
// and a host the CLI attached to (PULUMI_DEBUG_LANGUAGES) outlives many such sessions, so later Runs
// get a fresh context instead of one that is already cancelled.
func (h *pythonHost) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cancelRuns()
	h.runs, h.cancelRuns = context.WithCancel(context.Background())
	return &emptypb.Empty{}, nil
}

// Run executes the program through the entry script and turns how it exited into the engine's terms.
func (h *pythonHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	if req.GetAttachDebugger() {
		return &pulumirpc.RunResponse{Error: "this Python language host cannot start programs under a debugger"}, nil
	}
	opts, tc, err := resolveToolchain(req.Info, false)
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	if err := runTypechecker(ctx, tc, opts); err != nil {
		return nil, err
	}

	// The program stops when the engine calls Cancel or abandons this request.
	runCtx, stopRun := context.WithCancel(h.runsContext())
	defer stopRun()
	context.AfterFunc(ctx, stopRun)

	args := append([]string{h.execScript}, h.execScriptArgs(req)...)
	cmd, err := tc.Command(runCtx, args...)
	if err != nil {
		return nil, err
	}
	// Interrupt first so the Python SDK can finish what it has in flight; kill only if it lingers.
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 5 * time.Second
	// The engine relays whatever the program prints on our own stdout and stderr.
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr

	env := cmd.Env
	if env == nil { // ambient Python: the toolchain left the environment alone
		env = os.Environ()
	}
	programEnv, err := configEnv(req)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(env, programEnv...)
	logging.V(5).Infof("running Python program: %s", strings.Join(cmd.Args, " "))

	err = cmd.Run()
	if err == nil {
		return &pulumirpc.RunResponse{}, nil
	}
	// A Python that dies early may leave its last words unflushed in our copies of the streams.
	_ = os.Stdout.Sync()
	_ = os.Stderr.Sync()

	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr) && exitErr.ExitCode() == exitCodeErrorAlreadyReported:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() > 0:
		err = fmt.Errorf("program exited with non-zero exit code: %d", exitErr.ExitCode())
	case errors.As(err, &exitErr): // killed by a signal, or otherwise no exit code
		err = fmt.Errorf("program exited unexpectedly: %w", exitErr)
	default:
		err = fmt.Errorf("problem executing program (could not run language executor): %w", err)
	}
	return &pulumirpc.RunResponse{Error: err.Error()}, nil
}

// execScriptArgs builds the entry script's command line: its flags, then the entry point (relative to
// the working directory the script switches to), then the program's own arguments.
func (h *pythonHost) execScriptArgs(req *pulumirpc.RunRequest) []string {
	var args []string
	flagIfSet := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	flagIfSet("monitor", req.GetMonitorAddress())
	flagIfSet("engine", h.engine())
	flagIfSet("project", req.GetProject())
	flagIfSet("root_directory", req.GetInfo().GetRootDirectory())
	flagIfSet("stack", req.GetStack())
	flagIfSet("pwd", req.GetPwd())
	flagIfSet("dry_run", strconv.FormatBool(req.GetDryRun()))
	flagIfSet("parallel", strconv.Itoa(int(req.GetParallel())))
	flagIfSet("tracing", h.tracingEndpoint)
	flagIfSet("organization", req.GetOrganization())
	args = append(args, req.GetInfo().GetEntryPoint())
	return append(args, req.GetArgs()...)
}

// configEnv passes the stack's configuration the way the Python SDK reads it: PULUMI_CONFIG holds a JSON
// object of "project:key" to its string value (secrets already decrypted), PULUMI_CONFIG_SECRET_KEYS a
// JSON list of the keys whose values the SDK must wrap as secrets.
func configEnv(req *pulumirpc.RunRequest) ([]string, error) {
	var env []string
	if config := req.GetConfig(); config != nil {
		configJSON, err := json.Marshal(config)
		if err != nil {
			return nil, fmt.Errorf("failed to serialize configuration: %w", err)
		}
		env = append(env, "PULUMI_CONFIG="+string(configJSON))
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{} // the SDK expects a list, even an empty one
	}
	secretKeysJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("failed to serialize configuration secret keys: %w", err)
	}
	return append(env, "PULUMI_CONFIG_SECRET_KEYS="+string(secretKeysJSON)), nil
}

// runTypechecker runs mypy or pyright over the program first when Pulumi.yaml asks for one.
func runTypechecker(ctx context.Context, tc toolchain.Toolchain, opts toolchain.PythonOptions) error {
	var checker string
	switch opts.Typechecker {
	case toolchain.TypeCheckerMypy:
		checker = "mypy"
	case toolchain.TypeCheckerPyright:
		checker = "pyright"
	default:
		return nil
	}
	args := []string{"-m", checker}
	if checker == "mypy" {
		// mypy would otherwise check every package installed in a virtualenv inside the program.
		venv, err := tc.VirtualEnvPath(ctx)
		if err != nil {
			return err
		}
		if venv != "" {
			if rel, err := filepath.Rel(opts.ProgramDir, venv); err == nil {
				args = append(args, "--exclude", rel)
			}
		}
	}
	args = append(args, opts.ProgramDir)
	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return err
	}
	cmd.Dir = opts.ProgramDir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s failed: %w", checker, err)
	}
	return nil
}

// InstallDependencies (`pulumi install`, and `pulumi new`) creates the virtualenv and installs the
// requirements, streaming pip's output back to the CLI. A plugin that is a buildable package is
// installed into its own virtualenv as well.
func (h *pythonHost) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	ctx := server.Context()
	_, tc, err := resolveToolchain(req.Info, req.IsPlugin)
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.IsTerminal)
	if err != nil {
		return err
	}
	defer closer.Close()

	// The toolchain announces each step itself ("Installing dependencies in virtual environment...").
	dir := req.Info.ProgramDirectory
	if req.IsPlugin {
		buildable, err := toolchain.IsBuildablePackage(dir)
		if err != nil {
			return fmt.Errorf("checking if the plugin is a buildable package: %w", err)
		}
		if buildable {
			if err := tc.InstallPackage(ctx, dir, req.UseLanguageVersionTools, true, stdout, stderr); err != nil {
				return err
			}
		}
	}
	if err := tc.InstallDependencies(ctx, dir, req.UseLanguageVersionTools, true, stdout, stderr); err != nil {
		return err
	}
	return closer.Close()
}

// About (`pulumi about`) describes the Python the program would run on.
func (h *pythonHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	// An AboutRequest without program info means "the default Python", i.e. pip on the ambient one.
	opts := toolchain.PythonOptions{Toolchain: toolchain.Pip}
	if req.GetInfo() != nil {
		var err error
		if opts, err = pythonOptions(req.Info, false); err != nil {
			return nil, err
		}
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	info, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{
		Executable: info.PythonExecutable,
		Version:    info.PythonVersion.String(),
		Metadata: map[string]string{
			"toolchain":        toolchain.Name(opts.Toolchain),
			"toolchainVersion": info.ToolchainVersion.String(),
			"typechecker":      toolchain.TypeCheckerName(opts.Typechecker),
		},
	}, nil
}

// GetProgramDependencies (`pulumi about`) lists the packages installed in the program's environment.
func (h *pythonHost) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	_, tc, err := resolveToolchain(req.Info, false)
	if err != nil {
		return nil, err
	}
	packages, err := tc.ListPackages(ctx, req.TransitiveDependencies)
	if err != nil {
		return nil, fmt.Errorf("failed to get python dependencies: %w", err)
	}
	deps := make([]*pulumirpc.DependencyInfo, 0, len(packages))
	for _, p := range packages {
		deps = append(deps, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}

// Template (`pulumi new`) lets the toolchain adapt a fresh project (e.g. uv or poetry turn
// requirements.txt into a pyproject.toml; pip leaves it as it is).
func (h *pythonHost) Template(ctx context.Context, req *pulumirpc.TemplateRequest) (*pulumirpc.TemplateResponse, error) {
	_, tc, err := resolveToolchain(req.Info, false)
	if err != nil {
		return nil, err
	}
	if err := tc.PrepareProject(ctx, req.ProjectName, req.Info.ProgramDirectory, false, nil, nil); err != nil {
		return nil, err
	}
	return &pulumirpc.TemplateResponse{}, nil
}

// GetRequiredPlugins is the older form of GetRequiredPackages; the CLI only falls back to it when
// GetRequiredPackages is unimplemented, so it stays unimplemented here, as in the official host.
func (h *pythonHost) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "GetRequiredPlugins is superseded by GetRequiredPackages")
}

// Code generation (GenerateProgram, GenerateProject, GeneratePackage), Pack, Link and
// RuntimeOptionsPrompts are left to the embedded UnimplementedLanguageRuntimeServer: they serve
// `pulumi convert`, `pulumi package add/gen-sdk` and the prompts of `pulumi new`, not deployments.

// engineLog returns a writer whose writes appear as ephemeral messages in the CLI's display, for
// progress output (a virtualenv being created) outside a streaming RPC. Without an engine to talk
// to, the output is dropped.
func (h *pythonHost) engineLog(ctx context.Context) io.Writer {
	engineAddress := h.engine()
	if engineAddress == "" {
		return io.Discard
	}
	conn, err := grpc.NewClient(engineAddress,
		grpc.WithTransportCredentials(insecure.NewCredentials()), rpcutil.GrpcChannelOptions())
	if err != nil {
		return io.Discard
	}
	context.AfterFunc(ctx, func() { _ = conn.Close() })
	return &engineLogWriter{ctx: ctx, engine: pulumirpc.NewEngineClient(conn), streamID: rand.Int31()}
}

type engineLogWriter struct {
	ctx      context.Context
	engine   pulumirpc.EngineClient
	streamID int32 // groups the messages into one stream in the display
}

func (w *engineLogWriter) Write(p []byte) (int, error) {
	_, err := w.engine.Log(w.ctx, &pulumirpc.LogRequest{
		Message:   strings.ToValidUTF8(string(p), "\uFFFD"),
		Severity:  pulumirpc.LogSeverity_INFO,
		Ephemeral: true,
		StreamId:  w.streamID,
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}
