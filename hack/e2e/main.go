// Command e2ekit is hack/e2e.sh's helper for the parts a shell script does
// badly: reading CRDs out of Go module zips, splitting a stream of
// Kubernetes objects into one file per object (with the rendered file each
// came from), and mapping istioctl analyze findings back to those files.
//
//	e2ekit crds -o DIR module@version:path...
//	    Downloads each module with `go mod download` (the module proxy is
//	    the only source), reads every CustomResourceDefinition in the YAML
//	    files at path (a file, or a directory ending in /) inside the module
//	    zip, and writes DIR/<name>.yaml plus DIR/index.tsv with the columns
//	    group, kind, served versions, file, source.
//
//	e2ekit split -o DIR [-label FILE] [-origins BUILD -origin-base DIR -root DIR] INPUT
//	    Writes every object of INPUT (a multi-document YAML stream) to
//	    DIR/NNN.yaml, and DIR/index.tsv with the columns object file, apply
//	    phase, apiVersion, kind, namespace, name, origin ("-" when empty).
//	    Phases: ns (Namespaces, applied first), crd, obj, and dry: objects
//	    that would make the apiserver call a service that does not run here
//	    (admission webhook configurations, APIServices, CRDs with a
//	    conversion webhook), which are only validated with
//	    --dry-run=server. The origin of an object is the file it came from:
//	    read from the config.kubernetes.io/origin annotation of the same
//	    object in BUILD (a build of the same overlay with buildMetadata:
//	    [originAnnotations]), relative to -root, or else -label.
//	    DIR/provides.tsv lists the group and kind of every CRD among the
//	    objects.
//
//	e2ekit analyze -out STDOUT -err STDERR INDEX...
//	    Reads what `istioctl analyze -o json` printed and prints one line
//	    per analyzer message and per file istioctl could not parse: origin
//	    file, Kind/name, and the message with its level and code; exits 1
//	    when there is any.
package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: e2ekit crds|split|analyze ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "crds":
		err = crds(os.Args[2:])
	case "split":
		err = split(os.Args[2:])
	case "analyze":
		err = analyze(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2ekit:", err)
		if errors.Is(err, errFindings) {
			os.Exit(1)
		}
		os.Exit(2)
	}
}

// doc is one YAML document: its node (written back out as is) and the
// fields the harness needs.
type doc struct {
	node                              *yaml.Node
	apiVersion, kind, namespace, name string
	annotations                       map[string]string
}

func (d doc) key() string {
	return d.apiVersion + "|" + d.kind + "|" + d.namespace + "|" + d.name
}

// decode reads every non-empty document of a YAML stream.
func decode(r io.Reader, what string) ([]doc, error) {
	dec := yaml.NewDecoder(r)
	var docs []doc
	for i := 0; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", what, i+1, err)
		}
		if len(n.Content) == 0 || n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null" {
			continue // an empty document
		}
		var meta struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Metadata   struct {
				Name        string            `yaml:"name"`
				Namespace   string            `yaml:"namespace"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
		}
		if err := n.Decode(&meta); err != nil {
			return nil, fmt.Errorf("%s: document %d is not a Kubernetes object: %w", what, i+1, err)
		}
		if meta.APIVersion == "" || meta.Kind == "" {
			return nil, fmt.Errorf("%s: document %d has no apiVersion or kind", what, i+1)
		}
		docs = append(docs, doc{&n, meta.APIVersion, meta.Kind, meta.Metadata.Namespace, meta.Metadata.Name, meta.Metadata.Annotations})
	}
}

func encode(w io.Writer, docs ...*yaml.Node) error {
	if len(docs) == 0 {
		return nil // an encoder closed before any document fails
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	for _, n := range docs {
		if err := enc.Encode(n); err != nil {
			return err
		}
	}
	return enc.Close()
}

// lookup returns the value node at path in a mapping node, or nil.
func lookup(n *yaml.Node, path ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == p {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

func conversionWebhook(d doc) bool {
	s := lookup(d.node, "spec", "conversion", "strategy")
	return s != nil && s.Value == "Webhook"
}

// crds builds the CRD catalog.
func crds(args []string) error {
	fs := flag.NewFlagSet("crds", flag.ExitOnError)
	out := fs.String("o", "", "output directory")
	fs.Parse(args)
	if *out == "" || fs.NArg() == 0 {
		return errors.New("usage: e2ekit crds -o DIR module@version:path...")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "e2ekit")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	seen := map[string]string{}
	var index []string
	for _, src := range fs.Args() {
		modver, path, ok := strings.Cut(src, ":")
		mod, ver, ok2 := strings.Cut(modver, "@")
		if !ok || !ok2 {
			return fmt.Errorf("source %q is not module@version:path", src)
		}
		zipFile, err := download(tmp, modver)
		if err != nil {
			return err
		}
		zr, err := zip.OpenReader(zipFile)
		if err != nil {
			return fmt.Errorf("%s: %w", modver, err)
		}
		prefix := mod + "@" + ver + "/" + path
		found := 0
		for _, f := range zr.File {
			name := f.Name
			if strings.HasSuffix(path, "/") {
				if !strings.HasPrefix(name, prefix) || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
					continue
				}
			} else if name != prefix {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				return err
			}
			docs, err := decode(rc, strings.TrimPrefix(name, mod+"@"+ver+"/"))
			rc.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", modver, err)
			}
			for _, d := range docs {
				if d.kind != "CustomResourceDefinition" {
					continue
				}
				if d.apiVersion != "apiextensions.k8s.io/v1" {
					return fmt.Errorf("%s: %s: CRD %s is %s, not apiextensions.k8s.io/v1", modver, name, d.name, d.apiVersion)
				}
				if prev, dup := seen[d.name]; dup {
					fmt.Fprintf(os.Stderr, "e2ekit: CRD %s from %s ignored: already taken from %s\n", d.name, src, prev)
					continue
				}
				seen[d.name] = src
				if conversionWebhook(d) {
					// The conversion service does not run here; its versions are
					// still all served, so objects of every served version apply.
					s := lookup(d.node, "spec", "conversion")
					s.Content = []*yaml.Node{{Kind: yaml.ScalarNode, Value: "strategy"}, {Kind: yaml.ScalarNode, Value: "None"}}
					fmt.Fprintf(os.Stderr, "e2ekit: CRD %s: conversion webhook replaced by strategy None (no conversion service runs here)\n", d.name)
				}
				group := lookup(d.node, "spec", "group")
				kind := lookup(d.node, "spec", "names", "kind")
				if group == nil || kind == nil {
					return fmt.Errorf("%s: CRD %s has no spec.group or spec.names.kind", src, d.name)
				}
				var versions []string
				if vs := lookup(d.node, "spec", "versions"); vs != nil {
					for _, v := range vs.Content {
						if served := lookup(v, "served"); served != nil && served.Value == "true" {
							versions = append(versions, lookup(v, "name").Value)
						}
					}
				}
				file := filepath.Join(*out, d.name+".yaml")
				var buf bytes.Buffer
				if err := encode(&buf, d.node); err != nil {
					return err
				}
				if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
					return err
				}
				index = append(index, strings.Join([]string{group.Value, kind.Value, strings.Join(versions, ","), file, src}, "\t"))
				found++
			}
		}
		zr.Close()
		if found == 0 {
			return fmt.Errorf("no CRDs at %s in %s", path, zipFile)
		}
	}
	sort.Strings(index)
	return os.WriteFile(filepath.Join(*out, "index.tsv"), []byte(strings.Join(index, "\n")+"\n"), 0o644)
}

// download fetches a module zip through the Go module proxy and returns its
// path. A module whose go.mod needs a newer Go than this one is still
// downloaded (go reports an error but leaves the zip in the cache); only its
// files are read here, never built.
func download(dir, modver string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", modver)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var info struct{ Zip, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download %s: %v %s", modver, runErr, stderr.String())
	}
	if info.Zip != "" {
		if _, err := os.Stat(info.Zip); err == nil {
			return info.Zip, nil
		}
	}
	return "", fmt.Errorf("go mod download %s: %s %s", modver, info.Error, stderr.String())
}

// phase says how hack/e2e.sh applies an object.
func phase(d doc) string {
	switch {
	case d.apiVersion == "v1" && d.kind == "Namespace":
		return "ns"
	case d.kind == "CustomResourceDefinition" && strings.HasPrefix(d.apiVersion, "apiextensions.k8s.io/"):
		if conversionWebhook(d) {
			return "dry"
		}
		return "crd"
	case strings.HasPrefix(d.apiVersion, "admissionregistration.k8s.io/") &&
		(d.kind == "ValidatingWebhookConfiguration" || d.kind == "MutatingWebhookConfiguration"):
		return "dry"
	case strings.HasPrefix(d.apiVersion, "apiregistration.k8s.io/") && d.kind == "APIService":
		return "dry"
	}
	return "obj"
}

func split(args []string) error {
	fs := flag.NewFlagSet("split", flag.ExitOnError)
	out := fs.String("o", "", "output directory")
	label := fs.String("label", "", "origin of objects without an origin annotation")
	origins := fs.String("origins", "", "the same overlay built with originAnnotations")
	base := fs.String("origin-base", "", "directory the origin paths are relative to")
	root := fs.String("root", "", "print origins relative to this directory")
	fs.Parse(args)
	if *out == "" || fs.NArg() != 1 {
		return errors.New("usage: e2ekit split -o DIR [-label FILE] [-origins BUILD -origin-base DIR -root DIR] INPUT")
	}
	in, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	docs, err := decode(in, fs.Arg(0))
	in.Close()
	if err != nil {
		return err
	}
	originOf := map[string]string{}
	if *origins != "" {
		if f, err := os.Open(*origins); err == nil {
			odocs, err := decode(f, *origins)
			f.Close()
			if err == nil {
				for _, d := range odocs {
					var o struct{ Path, ConfiguredIn string }
					a, ok := d.annotations["config.kubernetes.io/origin"]
					if !ok || yaml.Unmarshal([]byte(a), &o) != nil {
						continue
					}
					p := o.Path
					if p == "" {
						p = o.ConfiguredIn // made by a generator in that kustomization
					}
					if p == "" || strings.Contains(p, "://") {
						continue
					}
					p = filepath.Join(*base, p)
					if *root != "" {
						if rel, err := filepath.Rel(*root, p); err == nil {
							p = rel
						}
					}
					originOf[d.key()] = p
				}
			}
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	var index, provides bytes.Buffer
	for i, d := range docs {
		file := filepath.Join(*out, fmt.Sprintf("%03d.yaml", i+1))
		var buf bytes.Buffer
		if err := encode(&buf, d.node); err != nil {
			return err
		}
		if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
			return err
		}
		p := phase(d)
		if d.kind == "CustomResourceDefinition" {
			if g, k := lookup(d.node, "spec", "group"), lookup(d.node, "spec", "names", "kind"); g != nil && k != nil {
				fmt.Fprintf(&provides, "%s\t%s\n", g.Value, k.Value)
			}
		}
		origin := originOf[d.key()]
		if origin == "" {
			origin = *label
		}
		fmt.Fprintf(&index, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", file, p, d.apiVersion, d.kind, dash(d.namespace), dash(d.name), dash(origin))
	}
	if err := os.WriteFile(filepath.Join(*out, "provides.tsv"), provides.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*out, "index.tsv"), index.Bytes(), 0o644)
}

// dash stands for an empty field in index.tsv, so that shells splitting
// on tabs keep every column.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var errFindings = errors.New("analyzer findings")

// parseError is how istioctl analyze reports a file it skips.
var parseError = regexp.MustCompile(`error processing (\S+?)\[\d+\]: (.*?)(?: - skipping)?$`)

// analyze maps istioctl analyze -o json output to origin files.
func analyze(args []string) error {
	fs := flag.NewFlagSet("analyze", flag.ExitOnError)
	outFile := fs.String("out", "", "istioctl analyze -o json's stdout")
	errFile := fs.String("err", "", "its stderr")
	fs.Parse(args)
	type entry struct{ file, origin, kind, ns, name string }
	var entries []entry
	for _, idx := range fs.Args() {
		b, err := os.ReadFile(idx)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Split(line, "\t")
			if len(f) == 7 {
				if f[4] == "-" {
					f[4] = ""
				}
				entries = append(entries, entry{file: f[0], kind: f[3], ns: f[4], name: f[5], origin: f[6]})
			}
		}
	}
	find := func(file, kind, ns, name string) (origin, object string) {
		for _, e := range entries {
			if (file != "" && e.file == file) || (file == "" && e.kind == kind && e.ns == ns && e.name == name) {
				return e.origin, e.kind + "/" + e.name
			}
		}
		return "-", "-"
	}
	out, err := os.ReadFile(*outFile)
	if err != nil {
		return err
	}
	stderr, err := os.ReadFile(*errFile)
	if err != nil {
		return err
	}
	findings := 0
	// Files istioctl could not read: it logs them (to stdout, before the
	// JSON, and again on stderr) and goes on without them.
	seen := map[string]bool{}
	for _, line := range strings.Split(string(out)+"\n"+string(stderr), "\n") {
		m := parseError.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || seen[m[1]+m[2]] {
			continue
		}
		seen[m[1]+m[2]] = true
		origin, object := find(m[1], "", "", "")
		fmt.Printf("%s\t%s\tcould not be parsed: %s\n", origin, object, m[2])
		findings++
	}
	start := bytes.Index(out, []byte("\n["))
	if bytes.HasPrefix(out, []byte("[")) {
		start = 0
	}
	if start < 0 {
		return fmt.Errorf("istioctl analyze printed no JSON:\n%s\n%s", out, stderr)
	}
	var msgs []struct {
		Code, Level, Origin, Reference, Message string
	}
	if err := json.Unmarshal(out[start:], &msgs); err != nil {
		return fmt.Errorf("istioctl analyze output is not JSON: %v\n%s\n%s", err, out, stderr)
	}
	for _, m := range msgs {
		// Origin is "Kind namespace/name" or "Kind name"; Reference, when
		// set, is "<analyzed file>:<line>".
		kind, rest, _ := strings.Cut(m.Origin, " ")
		ns, name, namespaced := strings.Cut(rest, "/")
		if !namespaced {
			ns, name = "", rest
		}
		ref, _, _ := strings.Cut(m.Reference, ":")
		origin, object := find(ref, kind, ns, name)
		if object == "-" {
			origin, object = find("", kind, ns, name)
		}
		if object == "-" {
			object = m.Origin
		}
		fmt.Printf("%s\t%s\t%s [%s] %s\n", origin, object, m.Level, m.Code, m.Message)
		findings++
	}
	if findings > 0 {
		return errFindings
	}
	return nil
}
