package main

// docker:index/image:Image, the one resource of pulumi_docker that is not bridged
// from Terraform: the released plugin implements it natively (pulumi-docker,
// provider/provider.go and provider/image.go). This is the project's own
// implementation of the same lifecycle, for the local builds the program asks for
// (skipPush): what it keeps of the released one, and what it leaves out, is listed
// in docs/engine.md.
//
//   Check   fills the build defaults (context ".", dockerfile <context>/Dockerfile,
//           platform linux/<arch>) and adds build.contextDigest, a digest of the
//           Dockerfile and of every file of the context (name, mode, content), so
//           an edited file is a change.
//   Diff    any changed input is an update, never a replacement.
//   Create,
//   Update  build the image (in a preview only when buildOnPreview); the outputs
//           carry repoDigest = the built image's ID, and the inputs under __inputs.
//   Read    returns the state as it is: nothing is read back from Docker, so an
//           image removed by hand is not rebuilt by a refresh.
//   Delete  leaves the image on the host.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/pkg/v3/resource/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const imageToken = "docker:index/image:Image"

// hybrid serves the bridged resources, and Image from imageProvider.
type hybrid struct {
	pulumirpc.ResourceProviderServer
	images *imageProvider
}

func isImage(urn string) bool { return string(resource.URN(urn).Type()) == imageToken }

func (h *hybrid) Configure(ctx context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	h.images.dockerHost = req.GetVariables()["docker:config:host"]
	return h.ResourceProviderServer.Configure(ctx, req)
}

func (h *hybrid) Check(ctx context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if isImage(req.GetUrn()) {
		return h.images.check(ctx, req)
	}
	return h.ResourceProviderServer.Check(ctx, req)
}

func (h *hybrid) Diff(ctx context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if isImage(req.GetUrn()) {
		return h.images.diff(req)
	}
	return h.ResourceProviderServer.Diff(ctx, req)
}

func (h *hybrid) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if isImage(req.GetUrn()) {
		id, props, err := h.images.build(ctx, req.GetUrn(), req.GetProperties(), req.GetPreview())
		return &pulumirpc.CreateResponse{Id: id, Properties: props}, err
	}
	return h.ResourceProviderServer.Create(ctx, req)
}

func (h *hybrid) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if isImage(req.GetUrn()) {
		return &pulumirpc.ReadResponse{Id: req.GetId(), Inputs: req.GetInputs(), Properties: req.GetProperties()}, nil
	}
	return h.ResourceProviderServer.Read(ctx, req)
}

func (h *hybrid) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if isImage(req.GetUrn()) {
		_, props, err := h.images.build(ctx, req.GetUrn(), req.GetNews(), req.GetPreview())
		return &pulumirpc.UpdateResponse{Properties: props}, err
	}
	return h.ResourceProviderServer.Update(ctx, req)
}

func (h *hybrid) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if isImage(req.GetUrn()) {
		return &emptypb.Empty{}, nil
	}
	return h.ResourceProviderServer.Delete(ctx, req)
}

type imageProvider struct {
	host       *provider.HostClient
	dockerHost string
}

var keep = plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true, KeepSecrets: true}

// buildSettings are the build inputs after defaults; empty when unknown in a preview.
type buildSettings struct {
	context, dockerfile, platform, target string
	args                                 map[string]string
	legacyBuilder                        bool
	known                                bool
}

func readBuild(inputs resource.PropertyMap) buildSettings {
	b := buildSettings{context: ".", args: map[string]string{}}
	build := inputs["build"]
	if build.IsNull() {
		b.dockerfile, b.known = path.Join(b.context, "Dockerfile"), true
		return b
	}
	if !build.IsObject() {
		return b
	}
	fields := build.ObjectValue()
	if fields["context"].ContainsUnknowns() || fields["dockerfile"].ContainsUnknowns() ||
		fields["args"].ContainsUnknowns() {
		return b
	}
	if v := fields["context"]; v.IsString() {
		b.context = v.StringValue()
	}
	b.dockerfile = path.Join(b.context, "Dockerfile")
	if v := fields["dockerfile"]; v.IsString() {
		b.dockerfile = v.StringValue()
	}
	if v := fields["platform"]; v.IsString() {
		b.platform = v.StringValue()
	}
	if v := fields["target"]; v.IsString() {
		b.target = v.StringValue()
	}
	if v := fields["builderVersion"]; v.IsString() {
		b.legacyBuilder = v.StringValue() == "BuilderV1"
	}
	if v := fields["args"]; v.IsObject() {
		for key, value := range v.ObjectValue() {
			if value.IsString() {
				b.args[string(key)] = value.StringValue()
			}
		}
	}
	b.known = true
	return b
}

func (p *imageProvider) check(ctx context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	inputs, err := plugin.UnmarshalProperties(req.GetNews(), keep)
	if err != nil {
		return nil, err
	}
	if inputs["buildOnPreview"].IsNull() {
		inputs["buildOnPreview"] = resource.NewBoolProperty(false)
	}
	if inputs["build"].IsNull() {
		inputs["build"] = resource.NewObjectProperty(resource.PropertyMap{})
	}
	settings := readBuild(inputs)
	if build := inputs["build"]; build.IsObject() && settings.known {
		fields := build.ObjectValue()
		fields["context"] = resource.NewStringProperty(settings.context)
		fields["dockerfile"] = resource.NewStringProperty(settings.dockerfile)
		if _, err := os.Stat(settings.dockerfile); err != nil {
			return nil, fmt.Errorf("image %s: no Dockerfile at %q: %v", req.GetUrn(), settings.dockerfile, err)
		}
		digest, err := contextDigest(settings.context, settings.dockerfile)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", req.GetUrn(), err)
		}
		fields["contextDigest"] = resource.NewStringProperty(digest)
		if fields["platform"].IsNull() {
			fields["platform"] = resource.NewStringProperty("linux/" + runtime.GOARCH)
		}
	}
	checked, err := plugin.MarshalProperties(inputs, keep)
	return &pulumirpc.CheckResponse{Inputs: checked}, err
}

func (p *imageProvider) diff(req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	state, err := plugin.UnmarshalProperties(req.GetOlds(), keep)
	if err != nil {
		return nil, err
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), keep)
	if err != nil {
		return nil, err
	}
	olds := resource.PropertyMap{}
	if saved, ok := state["__inputs"]; ok {
		if saved.IsSecret() {
			saved = saved.SecretValue().Element
		}
		if saved.IsObject() {
			olds = saved.ObjectValue()
		}
	}
	changes := olds.Diff(news)
	if changes == nil {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	detailed := map[string]*pulumirpc.PropertyDiff{}
	for key := range changes.Adds {
		detailed[string(key)] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_ADD}
	}
	for key := range changes.Deletes {
		detailed[string(key)] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_DELETE}
	}
	for key := range changes.Updates {
		detailed[string(key)] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE}
	}
	return &pulumirpc.DiffResponse{
		Changes: pulumirpc.DiffResponse_DIFF_SOME, DetailedDiff: detailed, HasDetailedDiff: true,
	}, nil
}

func (p *imageProvider) build(ctx context.Context, urn string, props *structpb.Struct, preview bool,
) (string, *structpb.Struct, error) {
	inputs, err := plugin.UnmarshalProperties(props, keep)
	if err != nil {
		return "", nil, err
	}
	onPreview := inputs["buildOnPreview"]
	if preview && !(onPreview.IsBool() && onPreview.BoolValue()) {
		return "", props, nil
	}
	settings := readBuild(inputs)
	if !settings.known || !inputs["imageName"].IsString() {
		if preview {
			return "", props, nil
		}
		return "", nil, fmt.Errorf("image %s: the image name and build inputs must be known", urn)
	}
	name := inputs["imageName"].StringValue()
	args := []string{"build", "--tag", name, "--file", settings.dockerfile}
	if settings.platform != "" {
		args = append(args, "--platform", settings.platform)
	}
	if settings.target != "" {
		args = append(args, "--target", settings.target)
	}
	keys := make([]string, 0, len(settings.args))
	for key := range settings.args {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		args = append(args, "--build-arg", key+"="+settings.args[key])
	}
	args = append(args, settings.context)
	buildKit := !settings.legacyBuilder
	if buildKit && !p.hasBuildx(ctx) {
		// The released plugin talks BuildKit to the daemon itself; the docker CLI
		// needs its buildx component for that. Without it: the classic builder.
		buildKit = false
		_ = p.host.Log(ctx, diag.Warning, resource.URN(urn),
			"the docker CLI has no buildx component: building with the classic builder")
	}
	if _, err := p.docker(ctx, urn, buildKit, args...); err != nil {
		return "", nil, fmt.Errorf("building image %s: %w", name, err)
	}
	id, err := p.docker(ctx, urn, false, "image", "inspect", "--format", "{{.Id}}", name)
	if err != nil {
		return "", nil, fmt.Errorf("inspecting the built image %s: %w", name, err)
	}
	registry := ""
	if v := inputs["registry"]; v.IsObject() && v.ObjectValue()["server"].IsString() {
		registry = v.ObjectValue()["server"].StringValue()
	}
	state := resource.PropertyMap{
		"imageName":      resource.NewStringProperty(name),
		"baseImageName":  resource.NewStringProperty(name),
		"registryServer": resource.NewStringProperty(registry),
		"context":        resource.NewStringProperty(settings.context),
		"dockerfile":     resource.NewStringProperty(settings.dockerfile),
		"platform":       resource.NewStringProperty(settings.platform),
		"repoDigest":     resource.NewStringProperty(strings.TrimSpace(id)),
		"__inputs":       resource.MakeSecret(resource.NewObjectProperty(inputs)),
	}
	out, err := plugin.MarshalProperties(state, keep)
	return name, out, err
}

func (p *imageProvider) hasBuildx(ctx context.Context) bool {
	return exec.CommandContext(ctx, "docker", "buildx", "version").Run() == nil
}

// docker runs the docker CLI against the provider's host; its output is logged on the resource.
func (p *imageProvider) docker(ctx context.Context, urn string, buildKit bool, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = os.Environ()
	if p.dockerHost != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+p.dockerHost)
	}
	if buildKit {
		cmd.Env = append(cmd.Env, "DOCKER_BUILDKIT=1")
	} else {
		cmd.Env = append(cmd.Env, "DOCKER_BUILDKIT=0")
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if p.host != nil && stderr.Len() > 0 {
		severity := diag.Info
		if err != nil {
			severity = diag.Error
		}
		_ = p.host.Log(ctx, severity, resource.URN(urn), strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		return "", fmt.Errorf("docker %s: %v", strings.Join(args[:1], " "), err)
	}
	return stdout.String(), nil
}

// contextDigest is a digest of the Dockerfile and of each file of the context (path,
// mode and content), so that any edit, rename or chmod is a change of the inputs.
func contextDigest(contextDir, dockerfile string) (string, error) {
	all := sha256.New()
	add := func(file, name string, mode fs.FileMode) error {
		content := sha256.New()
		if mode.Type() == fs.ModeSymlink {
			target, err := os.Readlink(file)
			if err != nil {
				return err
			}
			content.Write([]byte(target))
		} else if mode.IsRegular() {
			f, err := os.Open(file)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(content, f); err != nil {
				return err
			}
		}
		fmt.Fprintf(all, "%s\x00%s\x00%s\x00", filepath.ToSlash(name), mode.String(), hex.EncodeToString(content.Sum(nil)))
		return nil
	}
	if err := add(dockerfile, "Dockerfile", 0); err != nil {
		return "", fmt.Errorf("reading the Dockerfile %q: %w", dockerfile, err)
	}
	err := filepath.WalkDir(contextDir, func(file string, entry fs.DirEntry, err error) error {
		if err != nil || entry.IsDir() {
			return err
		}
		info, err := entry.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(contextDir, file)
		if err != nil {
			return err
		}
		return add(file, rel, info.Mode())
	})
	if err != nil {
		return "", fmt.Errorf("reading the build context %q: %w", contextDir, err)
	}
	return hex.EncodeToString(all.Sum(nil)), nil
}
