package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: cache, labels: {app: cache}}
spec:
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec:
      containers:
        - name: cache
          image: costmesh:0.1.0
          ports: [{containerPort: 50052}]
          readinessProbe: {grpc: {port: 50052}}
`

const rayService = `apiVersion: ray.io/v1
kind: RayService
metadata: {name: models}
spec:
  serveConfigV2: |
    applications: [{name: small, import_path: "ray.serve.llm:build_openai_app", route_prefix: /small}]
  rayClusterConfig:
    headGroupSpec:
      rayStartParams: {}
      template: {spec: {containers: [{name: ray-head, image: ray:2.60.0}]}}
`

func TestValidDocumentsPass(t *testing.T) {
	for name, doc := range map[string]string{"deployment": deployment, "rayservice": rayService} {
		if where, problems := checkDocument([]byte(doc)); len(problems) != 0 || where == "" {
			t.Errorf("%s: %q %v", name, where, problems)
		}
	}
}

func TestRejects(t *testing.T) {
	cases := []struct{ name, doc, from, to, want string }{
		{"misspelled field", deployment, "containerPort:", "containerPrt:", `unknown field "spec.template.spec.containers[0].ports[0].containerPrt"`},
		{"wrong case", deployment, "readinessProbe", "readinessprobe", `unknown field "spec.template.spec.containers[0].readinessprobe"`},
		{"wrong type", deployment, "containerPort: 50052", `containerPort: "50052"`, "cannot unmarshal string"},
		{"duplicate key", deployment, "image: costmesh:0.1.0", "image: a\n          image: b", `key "image" already set`},
		{"selector mismatch", deployment, "matchLabels: {app: cache}", "matchLabels: {app: router}", "does not match"},
		{"no image", deployment, "image: costmesh:0.1.0", `image: ""`, "image: Required value"},
		{"bad env name", deployment, "ports:", "env: [{name: '1X', value: a}]\n          ports:", "env[0].name"},
		{"KubeRay misspelled field", rayService, "rayStartParams", "rayStartParam", `unknown field "spec.rayClusterConfig.headGroupSpec.rayStartParam"`},
		{"serve config without applications", rayService, "applications:", "apps:", "serveConfigV2"},
		{"unknown kind", deployment, "kind: Deployment", "kind: Deploymnet", "no schema"},
	}
	for _, c := range cases {
		broken := strings.Replace(c.doc, c.from, c.to, 1)
		if broken == c.doc {
			t.Fatalf("%s: %q not in the document", c.name, c.from)
		}
		_, problems := checkDocument([]byte(broken))
		if !strings.Contains(strings.Join(problems, "\n"), c.want) {
			t.Errorf("%s: want a problem with %q, got %v", c.name, c.want, problems)
		}
	}
}

func TestJSONKeepsDocumentsAndRejectsDuplicateKeys(t *testing.T) {
	dir := t.TempDir()
	good, bad := dir+"/good.yaml", dir+"/bad.yaml"
	os.WriteFile(good, []byte("a: 1\n---\n# only a comment\n---\nx: &x {b: 2}\nz: {<<: *x, w: 3}\n"), 0o600)
	os.WriteFile(bad, []byte("a: 1\na: 2\n"), 0o600)
	var out bytes.Buffer
	if err := printJSON(&out, []string{good}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out.String()), `[{"a":1},{"x":{"b":2},"z":{"b":2,"w":3}}]`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if err := printJSON(&out, []string{bad}); err == nil || !strings.Contains(err.Error(), `key "a" already set`) {
		t.Errorf("duplicate key: %v", err)
	}
}
