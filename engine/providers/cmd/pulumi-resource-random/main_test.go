package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"fourlb.local/engine/providers/internal/wire"
)

const (
	passwordURN = "urn:pulumi:dev::proj::" + passwordType + "::pw"
	idURN       = "urn:pulumi:dev::proj::" + idType + "::rid"
)

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

// create runs Check then Create as the engine does, failing the test on
// check failures, and returns the ID and outputs.
func create(t *testing.T, urn string, in resource.PropertyMap) (string, resource.PropertyMap) {
	t.Helper()
	s := newServer()
	checked, err := s.Check(ctx, &pulumirpc.CheckRequest{Urn: urn, News: marshal(t, in)})
	if err != nil || len(checked.GetFailures()) > 0 {
		t.Fatalf("check: %v %v", err, checked.GetFailures())
	}
	resp, err := s.Create(ctx, &pulumirpc.CreateRequest{Urn: urn, Properties: checked.GetInputs()})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return resp.GetId(), unmarshal(t, resp.GetProperties())
}

func diff(t *testing.T, urn string, state, news resource.PropertyMap) *pulumirpc.DiffResponse {
	t.Helper()
	resp, err := newServer().Diff(ctx, &pulumirpc.DiffRequest{Urn: urn, Olds: marshal(t, state), News: marshal(t, news)})
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	return resp
}

func checkFailures(t *testing.T, urn string, in resource.PropertyMap) []string {
	t.Helper()
	resp, err := newServer().Check(ctx, &pulumirpc.CheckRequest{Urn: urn, News: marshal(t, in)})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	var props []string
	for _, f := range resp.GetFailures() {
		props = append(props, f.GetProperty())
	}
	return props
}

func secretString(t *testing.T, m resource.PropertyMap, key resource.PropertyKey) string {
	t.Helper()
	v := m[key]
	if !v.IsSecret() {
		t.Fatalf("%s is not secret: %v", key, v)
	}
	return v.SecretValue().Element.StringValue()
}

func TestReportsTheVersionThePythonSDKAsksFor(t *testing.T) {
	info, err := newServer().GetPluginInfo(ctx, &emptypb.Empty{})
	if err != nil || info.GetVersion() != "4.21.4" {
		t.Fatalf("version %q, %v", info.GetVersion(), err)
	}
}

func TestPasswordWithoutSpecialIsAlphanumericSecretAndHashed(t *testing.T) {
	id, out := create(t, passwordURN, inputs(map[string]any{"length": 24, "special": false}))

	result := secretString(t, out, "result")
	if !regexp.MustCompile(`^[A-Za-z0-9]{24}$`).MatchString(result) {
		t.Fatalf("result %q is not 24 alphanumerics", result)
	}
	hash := secretString(t, out, "bcryptHash")
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(result)); err != nil {
		t.Fatalf("bcryptHash does not match result: %v", err)
	}
	// resource_password.go Create: ID "none"; the planned defaults are echoed.
	if id != "none" || out["id"].StringValue() != "none" {
		t.Fatalf("id %q, outputs id %v", id, out["id"])
	}
	for key, want := range map[resource.PropertyKey]any{
		"length": 24.0, "special": false, "upper": true, "lower": true, "number": true, "numeric": true,
		"minUpper": 0.0, "minLower": 0.0, "minNumeric": 0.0, "minSpecial": 0.0,
	} {
		if got := out[key].V; got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	if _, ok := out["overrideSpecial"]; ok {
		t.Errorf("overrideSpecial was not given but is in the outputs")
	}
}

func TestPasswordMinimumsAreMetEvenFromDisabledClasses(t *testing.T) {
	// internal/random/string.go draws each minimum from its class whether or
	// not the class is enabled.
	_, out := create(t, passwordURN, inputs(map[string]any{
		"length": 10, "upper": false, "numeric": false, "special": false, "minUpper": 4,
	}))
	result := secretString(t, out, "result")
	if n := len(regexp.MustCompile(`[A-Z]`).FindAllString(result, -1)); n != 4 {
		t.Fatalf("%q has %d uppercase letters, want exactly 4", result, n)
	}
	if !regexp.MustCompile(`^[a-zA-Z]{10}$`).MatchString(result) {
		t.Fatalf("%q has characters other than letters", result)
	}
}

func TestPasswordOverrideSpecialReplacesTheSpecialCharacters(t *testing.T) {
	_, out := create(t, passwordURN, inputs(map[string]any{
		"length": 8, "upper": false, "lower": false, "numeric": false, "overrideSpecial": "é",
	}))
	if result := secretString(t, out, "result"); result != strings.Repeat("é", 8) {
		t.Fatalf("result %q, want 8 runes of é", result)
	}
}

func TestPasswordCheckAppliesTheSchemaValidators(t *testing.T) {
	for name, tc := range map[string]struct {
		in   map[string]any
		want string
	}{
		"length is required":              {map[string]any{"special": false}, "length"},
		"length at least 1":               {map[string]any{"length": 0}, "length"},
		"length at least sum of minimums": {map[string]any{"length": 3, "minUpper": 2, "minLower": 2}, "length"},
		"length is an integer":            {map[string]any{"length": 2.5}, "length"},
		"number and numeric disagree":     {map[string]any{"length": 3, "number": true, "numeric": false}, "numeric"},
		"no character class": {map[string]any{
			"length": 3, "upper": false, "lower": false, "numeric": false, "special": false,
		}, "numeric"},
		"keepers are strings": {map[string]any{"length": 3, "keepers": map[string]any{"k": 1}}, "keepers"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := checkFailures(t, passwordURN, inputs(tc.in)); len(got) != 1 || got[0] != tc.want {
				t.Fatalf("failures on %v, want one on %s", got, tc.want)
			}
		})
	}
	if got := checkFailures(t, passwordURN, inputs(map[string]any{"length": 4, "minUpper": 2, "minLower": 2})); got != nil {
		t.Fatalf("valid inputs failed on %v", got)
	}
}

func TestPasswordPreviewHasUnknownSecretResultAndNoID(t *testing.T) {
	in := marshal(t, inputs(map[string]any{"length": 24, "special": false}))
	resp, err := newServer().Create(ctx, &pulumirpc.CreateRequest{Urn: passwordURN, Properties: in, Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	out := unmarshal(t, resp.GetProperties())
	if resp.GetId() != "" || !out["result"].IsSecret() || !out["result"].ContainsUnknowns() || !out["bcryptHash"].ContainsUnknowns() {
		t.Fatalf("id %q, result %v, bcryptHash %v", resp.GetId(), out["result"], out["bcryptHash"])
	}
	if out["upper"].V != true {
		t.Fatalf("the preview does not show the planned default upper=true: %v", out["upper"])
	}
}

func TestPasswordSameInputsAndExplicitDefaultsAreNoChange(t *testing.T) {
	_, state := create(t, passwordURN, inputs(map[string]any{"length": 24, "special": false}))
	for _, news := range []map[string]any{
		{"length": 24, "special": false},
		// The bridge diffs the state with the plan, where defaults are filled in.
		{"length": 24, "special": false, "upper": true, "numeric": true, "minLower": 0},
	} {
		if resp := diff(t, passwordURN, state, inputs(news)); resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
			t.Errorf("%v: %v", news, resp)
		}
	}
}

func TestPasswordEveryInputChangeReplaces(t *testing.T) {
	_, state := create(t, passwordURN, inputs(map[string]any{"length": 24, "special": false}))
	for key, value := range map[string]any{
		"length": 25, "special": true, "upper": false, "lower": false, "numeric": false, "number": false,
		"minUpper": 1, "minLower": 1, "minNumeric": 1, "minSpecial": 1, "overrideSpecial": "!",
		"keepers": map[string]any{"k": "v"},
	} {
		news := inputs(map[string]any{"length": 24, "special": false, key: value})
		resp := diff(t, passwordURN, state, news)
		if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || len(resp.GetReplaces()) == 0 || resp.GetDeleteBeforeReplace() {
			t.Errorf("%s: %v", key, resp)
		}
		// number and numeric move together (NumberNumericAttributePlanModifier).
		for _, replaced := range resp.GetReplaces() {
			if replaced != key && !(replaced == "number" || replaced == "numeric") {
				t.Errorf("%s: replaces %v", key, resp.GetReplaces())
			}
		}
	}
}

func TestIDKeeperChangeReplacesWithADetailedDiff(t *testing.T) {
	_, state := create(t, idURN, inputs(map[string]any{"byteLength": 3, "keepers": map[string]any{"k": "a"}}))
	resp := diff(t, idURN, state, inputs(map[string]any{"byteLength": 3, "keepers": map[string]any{"k": "b"}}))
	if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || len(resp.GetReplaces()) != 1 || resp.GetReplaces()[0] != "keepers" {
		t.Fatalf("%v", resp)
	}
	if d := resp.GetDetailedDiff()["keepers.k"]; d.GetKind() != pulumirpc.PropertyDiff_UPDATE_REPLACE {
		t.Fatalf("detailed diff %v", resp.GetDetailedDiff())
	}
}

func TestIDUnknownKeeperReplaces(t *testing.T) {
	// A keeper computed from a resource being replaced is unknown in the
	// preview: Terraform plans it unknown, which requires replacement.
	_, state := create(t, idURN, inputs(map[string]any{"byteLength": 3, "keepers": map[string]any{"k": "a"}}))
	news := inputs(map[string]any{"byteLength": 3})
	news["keepers"] = resource.NewObjectProperty(resource.PropertyMap{
		"k": resource.MakeComputed(resource.NewStringProperty("")),
	})
	if resp := diff(t, idURN, state, news); len(resp.GetReplaces()) != 1 || resp.GetReplaces()[0] != "keepers" {
		t.Fatalf("%v", resp)
	}
}

func TestEmptyKeepersAreAnUpdateThatKeepsTheValue(t *testing.T) {
	// RequiresReplaceIfValuesNotNull: absent and {} keepers hold the same
	// non-null values, so the change is written to the state, not replaced.
	s := newServer()
	_, state := create(t, idURN, inputs(map[string]any{"byteLength": 3}))
	news := inputs(map[string]any{"byteLength": 3, "keepers": map[string]any{}})
	resp := diff(t, idURN, state, news)
	if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || len(resp.GetReplaces()) != 0 {
		t.Fatalf("%v", resp)
	}
	updated, err := s.Update(ctx, &pulumirpc.UpdateRequest{Urn: idURN, Olds: marshal(t, state), News: marshal(t, news)})
	if err != nil {
		t.Fatal(err)
	}
	out := unmarshal(t, updated.GetProperties())
	if out["hex"].StringValue() != state["hex"].StringValue() || !out["keepers"].IsObject() {
		t.Fatalf("update changed the value or lost keepers: %v -> %v", state, out)
	}
}

func TestIDEncodingsShareTheBytesAndTheIDHasNoPrefix(t *testing.T) {
	id, out := create(t, idURN, inputs(map[string]any{"byteLength": 3, "prefix": "p-"}))
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) != 3 {
		t.Fatalf("id %q is not 3 bytes of unpadded URL base64: %v", id, err)
	}
	want := map[resource.PropertyKey]string{
		"b64Url": "p-" + id,
		"b64Std": "p-" + base64.StdEncoding.EncodeToString(raw),
		"hex":    "p-" + hex.EncodeToString(raw),
		"dec":    "p-" + new(big.Int).SetBytes(raw).String(),
		"id":     id,
	}
	for key, w := range want {
		if got := out[key].StringValue(); got != w {
			t.Errorf("%s = %q, want %q", key, got, w)
		}
	}
	if out["byteLength"].NumberValue() != 3 || out["prefix"].StringValue() != "p-" {
		t.Errorf("inputs not echoed: %v", out)
	}
}

func TestIDCheckRequiresAPositiveByteLength(t *testing.T) {
	for _, in := range []map[string]any{{}, {"byteLength": 0}, {"byteLength": "3"}} {
		if got := checkFailures(t, idURN, inputs(in)); len(got) != 1 || got[0] != "byteLength" {
			t.Errorf("%v: failures %v", in, got)
		}
	}
}

func TestOtherResourceTypesAreAClearError(t *testing.T) {
	urn := "urn:pulumi:dev::proj::random:index/randomString:RandomString::s"
	_, err := newServer().Check(ctx, &pulumirpc.CheckRequest{Urn: urn, News: marshal(t, inputs(map[string]any{"length": 3}))})
	if err == nil || !strings.Contains(err.Error(), "random:index/randomString:RandomString") {
		t.Fatalf("error %v", err)
	}
}
