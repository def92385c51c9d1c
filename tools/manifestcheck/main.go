// Command manifestcheck validates rendered Kubernetes manifests offline, for `helm template` output in
// costmesh's test suite (tests/integration/test_deploy_chart.py).
//
// Each YAML document is decoded strictly into the typed Go struct of its apiVersion/kind: k8s.io/api at
// v0.37.2 (the Kubernetes 1.37 API, the release helm v4.3.2 is built against) and KubeRay's ray.io/v1
// types (ray-operator v1.5.0) for RayService. Strict means what the API server's strict field validation
// means: an unknown or misspelled field, a field in the wrong case, a duplicate key or a value of the
// wrong type fails. The typed structs are the schema, embedded in the binary: no JSON schema files to
// bundle or keep in step, and nothing fetched when it runs. A kind this table does not know fails too,
// so a new template cannot slip past unchecked.
//
// Structs say nothing about required fields or formats, so a few checks of the API server's own are
// added with apimachinery's validation helpers: object names, label keys and values, selectors that
// match their pod template, one container at least with a name and an image, env var names, one source
// per env value, ports in range, one handler per probe, HPA and PDB bounds, and a RayService whose
// serveConfigV2 is YAML with applications.
//
//	manifestcheck FILE... (or - for standard input); exit 1 and one line per problem when any is invalid.
//	manifestcheck -json FILE...: no checks, the documents as one JSON array (duplicate keys still fail), for
//	tests that read rendered manifests or compose files without a YAML library of their own.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	rayv1 "github.com/ray-project/kuberay/ray-operator/apis/ray/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// kinds maps "apiVersion/kind" to a fresh typed object and the checks beyond its struct.
var kinds = map[string]func() (any, func(any) field.ErrorList){
	"v1/ConfigMap":                           plain(func() any { return &corev1.ConfigMap{} }),
	"v1/Secret":                              plain(func() any { return &corev1.Secret{} }),
	"v1/ServiceAccount":                      plain(func() any { return &corev1.ServiceAccount{} }),
	"v1/Service":                             typed(checkService),
	"apps/v1/Deployment":                     typed(checkDeployment),
	"apps/v1/StatefulSet":                    typed(checkStatefulSet),
	"policy/v1/PodDisruptionBudget":          typed(checkPDB),
	"networking.k8s.io/v1/NetworkPolicy":     plain(func() any { return &networkingv1.NetworkPolicy{} }),
	"autoscaling/v2/HorizontalPodAutoscaler": typed(checkHPA),
	"ray.io/v1/RayService":                   typed(checkRayService),
}

func plain(newObject func() any) func() (any, func(any) field.ErrorList) {
	return func() (any, func(any) field.ErrorList) { return newObject(), func(any) field.ErrorList { return nil } }
}

func typed[T any](check func(*T) field.ErrorList) func() (any, func(any) field.ErrorList) {
	return func() (any, func(any) field.ErrorList) {
		return new(T), func(object any) field.ErrorList { return check(object.(*T)) }
	}
}

type header struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: manifestcheck FILE... (- for standard input)")
		os.Exit(2)
	}
	if os.Args[1] == "-json" {
		if err := printJSON(os.Stdout, os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	documents, problems := 0, 0
	for _, path := range os.Args[1:] {
		n, found, err := checkFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(2)
		}
		for _, problem := range found {
			fmt.Println(problem)
		}
		documents, problems = documents+n, problems+len(found)
	}
	if problems > 0 {
		fmt.Printf("%d problem(s) in %d document(s)\n", problems, documents)
		os.Exit(1)
	}
	fmt.Printf("%d document(s) valid\n", documents)
}

func open(path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(path)
}

// printJSON writes every non-empty YAML document of the files as one JSON array.
func printJSON(out io.Writer, paths []string) error {
	all := []json.RawMessage{}
	for _, path := range paths {
		in, err := open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		reader := k8syaml.NewYAMLReader(bufio.NewReader(in))
		for index := 1; ; index++ {
			raw, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			data, err := yaml.YAMLToJSONStrict(raw)
			if err != nil {
				return fmt.Errorf("%s: document %d: %w", path, index, err)
			}
			if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && string(trimmed) != "null" {
				all = append(all, data)
			}
		}
	}
	return json.NewEncoder(out).Encode(all)
}

func checkFile(path string) (int, []string, error) {
	in, err := open(path)
	if err != nil {
		return 0, nil, err
	}
	defer in.Close()
	reader := k8syaml.NewYAMLReader(bufio.NewReader(in))
	documents, problems := 0, []string{}
	for index := 0; ; index++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return documents, problems, nil
		}
		if err != nil {
			return documents, problems, err
		}
		where, errs := checkDocument(raw)
		if where == "" {
			continue // only comments or blank
		}
		documents++
		for _, e := range errs {
			problems = append(problems, fmt.Sprintf("%s: document %d (%s): %s", path, index+1, where, e))
		}
	}
}

// checkDocument returns "kind/name" (empty for an empty document) and what is wrong with it.
func checkDocument(raw []byte) (string, []string) {
	data, err := yaml.YAMLToJSONStrict(raw) // duplicate keys fail here
	if err != nil {
		return "?", []string{err.Error()}
	}
	if len(bytes.TrimSpace(data)) == 0 || string(bytes.TrimSpace(data)) == "null" {
		return "", nil
	}
	var head header
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, &head); err != nil {
		return "?", []string{err.Error()}
	}
	where := head.Kind + "/" + head.Metadata.Name
	build, known := kinds[head.APIVersion+"/"+head.Kind]
	if !known {
		return where, []string{fmt.Sprintf("no schema for apiVersion %q kind %q", head.APIVersion, head.Kind)}
	}
	object, check := build()
	strict, err := sigsjson.UnmarshalStrict(data, object)
	if err != nil {
		return where, []string{err.Error()}
	}
	problems := make([]string, 0, len(strict))
	for _, e := range strict {
		problems = append(problems, e.Error())
	}
	errs := checkMeta(head.Metadata, head.Kind == "Service")
	errs = append(errs, check(object)...)
	for _, e := range errs {
		problems = append(problems, e.Error())
	}
	return where, problems
}

func checkMeta(meta metav1.ObjectMeta, dns1035 bool) field.ErrorList {
	path := field.NewPath("metadata")
	var errs field.ErrorList
	nameCheck := validation.IsDNS1123Subdomain
	if dns1035 {
		nameCheck = validation.IsDNS1035Label // a Service's name becomes a DNS label
	}
	for _, msg := range nameCheck(meta.Name) {
		errs = append(errs, field.Invalid(path.Child("name"), meta.Name, msg))
	}
	errs = append(errs, metavalidation.ValidateLabels(meta.Labels, path.Child("labels"))...)
	return errs
}

func checkService(s *corev1.Service) field.ErrorList {
	path := field.NewPath("spec", "ports")
	errs := field.ErrorList{}
	if len(s.Spec.Ports) == 0 {
		errs = append(errs, field.Required(path, "a Service needs a port"))
	}
	for i, port := range s.Spec.Ports {
		errs = append(errs, portNumber(path.Index(i).Child("port"), port.Port)...)
	}
	return errs
}

func checkDeployment(d *appsv1.Deployment) field.ErrorList {
	return append(selects(field.NewPath("spec"), d.Spec.Selector, d.Spec.Template.Labels),
		checkPod(field.NewPath("spec", "template", "spec"), &d.Spec.Template.Spec)...)
}

func checkStatefulSet(s *appsv1.StatefulSet) field.ErrorList {
	errs := selects(field.NewPath("spec"), s.Spec.Selector, s.Spec.Template.Labels)
	if s.Spec.ServiceName == "" {
		errs = append(errs, field.Required(field.NewPath("spec", "serviceName"), "the governing headless Service"))
	}
	return append(errs, checkPod(field.NewPath("spec", "template", "spec"), &s.Spec.Template.Spec)...)
}

func selects(path *field.Path, selector *metav1.LabelSelector, podLabels map[string]string) field.ErrorList {
	if selector == nil {
		return field.ErrorList{field.Required(path.Child("selector"), "")}
	}
	parsed, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return field.ErrorList{field.Invalid(path.Child("selector"), selector, err.Error())}
	}
	if parsed.Empty() || !parsed.Matches(labels.Set(podLabels)) {
		return field.ErrorList{field.Invalid(path.Child("template", "metadata", "labels"), podLabels,
			"`selector` does not match template `labels`")}
	}
	return nil
}

func checkPod(path *field.Path, pod *corev1.PodSpec) field.ErrorList {
	var errs field.ErrorList
	if len(pod.Containers) == 0 {
		errs = append(errs, field.Required(path.Child("containers"), "at least one container"))
	}
	for i := range pod.InitContainers {
		errs = append(errs, checkContainer(path.Child("initContainers").Index(i), &pod.InitContainers[i])...)
	}
	for i := range pod.Containers {
		errs = append(errs, checkContainer(path.Child("containers").Index(i), &pod.Containers[i])...)
	}
	return errs
}

func checkContainer(path *field.Path, c *corev1.Container) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(c.Name) {
		errs = append(errs, field.Invalid(path.Child("name"), c.Name, msg))
	}
	if strings.TrimSpace(c.Image) == "" {
		errs = append(errs, field.Required(path.Child("image"), ""))
	}
	for i, env := range c.Env {
		at := path.Child("env").Index(i)
		for _, msg := range validation.IsEnvVarName(env.Name) {
			errs = append(errs, field.Invalid(at.Child("name"), env.Name, msg))
		}
		if env.ValueFrom != nil {
			errs = append(errs, envSource(at, env)...)
		}
	}
	for i, port := range c.Ports {
		errs = append(errs, portNumber(path.Child("ports").Index(i).Child("containerPort"), port.ContainerPort)...)
	}
	for name, probe := range map[string]*corev1.Probe{
		"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe,
	} {
		errs = append(errs, oneHandler(path.Child(name), probe)...)
	}
	return errs
}

func envSource(path *field.Path, env corev1.EnvVar) field.ErrorList {
	from := env.ValueFrom
	sources := 0
	for _, set := range []bool{
		from.FieldRef != nil, from.ResourceFieldRef != nil, from.ConfigMapKeyRef != nil, from.SecretKeyRef != nil,
		from.FileKeyRef != nil,
	} {
		if set {
			sources++
		}
	}
	var errs field.ErrorList
	if env.Value != "" {
		errs = append(errs, field.Invalid(path.Child("valueFrom"), "", "may not be given with a non-empty value"))
	}
	if sources != 1 {
		errs = append(errs, field.Invalid(path.Child("valueFrom"), sources, "exactly one source is required"))
	}
	if ref := from.SecretKeyRef; ref != nil && (ref.Name == "" || ref.Key == "") {
		errs = append(errs, field.Required(path.Child("valueFrom", "secretKeyRef"), "name and key"))
	}
	return errs
}

func oneHandler(path *field.Path, probe *corev1.Probe) field.ErrorList {
	if probe == nil {
		return nil
	}
	handlers := 0
	for _, set := range []bool{probe.Exec != nil, probe.HTTPGet != nil, probe.TCPSocket != nil, probe.GRPC != nil} {
		if set {
			handlers++
		}
	}
	if handlers != 1 {
		return field.ErrorList{field.Invalid(path, handlers, "exactly one handler (exec, httpGet, tcpSocket, grpc)")}
	}
	if probe.GRPC != nil {
		return portNumber(path.Child("grpc", "port"), probe.GRPC.Port)
	}
	return nil
}

func portNumber(path *field.Path, port int32) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortNum(int(port)) {
		errs = append(errs, field.Invalid(path, port, msg))
	}
	return errs
}

func checkHPA(h *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	path := field.NewPath("spec")
	var errs field.ErrorList
	if h.Spec.ScaleTargetRef.Kind == "" || h.Spec.ScaleTargetRef.Name == "" {
		errs = append(errs, field.Required(path.Child("scaleTargetRef"), "kind and name"))
	}
	if h.Spec.MaxReplicas < 1 {
		errs = append(errs, field.Invalid(path.Child("maxReplicas"), h.Spec.MaxReplicas, "must be at least 1"))
	}
	if h.Spec.MinReplicas != nil && (*h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas) {
		errs = append(errs, field.Invalid(path.Child("minReplicas"), *h.Spec.MinReplicas, "must be 1..maxReplicas"))
	}
	return errs
}

func checkPDB(p *policyv1.PodDisruptionBudget) field.ErrorList {
	path := field.NewPath("spec")
	if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
		return field.ErrorList{field.Invalid(path, "", "exactly one of minAvailable and maxUnavailable")}
	}
	if p.Spec.Selector == nil {
		return field.ErrorList{field.Required(path.Child("selector"), "")}
	}
	return nil
}

func checkRayService(r *rayv1.RayService) field.ErrorList {
	path := field.NewPath("spec")
	var errs field.ErrorList
	var serve struct {
		Applications []map[string]any `json:"applications"`
	}
	if err := yaml.Unmarshal([]byte(r.Spec.ServeConfigV2), &serve); err != nil || len(serve.Applications) == 0 {
		errs = append(errs, field.Invalid(path.Child("serveConfigV2"), "", "YAML with a list of applications"))
	}
	cluster := r.Spec.RayClusterSpec
	clusterPath := path.Child("rayClusterConfig")
	errs = append(errs, checkPod(clusterPath.Child("headGroupSpec", "template", "spec"), &cluster.HeadGroupSpec.Template.Spec)...)
	for i := range cluster.WorkerGroupSpecs {
		group := &cluster.WorkerGroupSpecs[i]
		at := clusterPath.Child("workerGroupSpecs").Index(i)
		for _, msg := range validation.IsDNS1123Label(group.GroupName) {
			errs = append(errs, field.Invalid(at.Child("groupName"), group.GroupName, msg))
		}
		if group.MinReplicas != nil && group.MaxReplicas != nil && *group.MinReplicas > *group.MaxReplicas {
			errs = append(errs, field.Invalid(at.Child("minReplicas"), *group.MinReplicas, "above maxReplicas"))
		}
		errs = append(errs, checkPod(at.Child("template", "spec"), &group.Template.Spec)...)
	}
	return errs
}
