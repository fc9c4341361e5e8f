package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// graphFormats are what meshfleet graph prints.
var graphFormats = []string{"mermaid", "dot"}

func setupGraph(fs *pflag.FlagSet) runFunc {
	var file, format string
	fleetFlag(fs, &file, "", "fleet file (.yaml, .yml, .json, .cue or .jsonnet)")
	wordsFlag(fs, &format, "format", graphFormats, "graph language")
	return func(io IO, _ []string) error {
		if err := required("graph", "fleet", file); err != nil {
			return err
		}
		if err := oneOf("graph", "format", format, graphFormats); err != nil {
			return err
		}
		f, err := fleet.Load(file)
		if err != nil {
			return err
		}
		g := meshGraph(f)
		if format == "dot" {
			g.dot(io.Out)
		} else {
			g.mermaid(io.Out)
		}
		return nil
	}
}

// graph is the picture of a mesh: clusters grouped by network, their
// east-west gateways, and which primary's istiod serves which remote.
type graph struct {
	title    string
	networks []network
	edges    []edge
}

type network struct {
	name  string
	nodes []node
}

type node struct {
	id, label string
	kind      string // primary, remote, gateway, or another role
}

type edge struct {
	from, to, label string
	plain           bool // a line without arrow head
}

func meshGraph(f *fleet.Fleet) graph {
	g := graph{title: fmt.Sprintf("fleet %s: mesh %s, %s, %s", f.Metadata.Name, f.Spec.Mesh.ID, f.ControlPlane(), f.Network())}
	index := map[string]int{}
	for _, c := range f.Clusters { // sorted by name
		i, ok := index[c.Network]
		if !ok {
			i = len(g.networks)
			index[c.Network] = i
			g.networks = append(g.networks, network{name: c.Network})
		}
		n := &g.networks[i]
		label := c.Name + "\n" + string(c.Role)
		switch {
		case c.Role == fleet.Primary:
			label += " · istiod"
		case c.Role == fleet.ExternalControlPlane:
			label = c.Name + "\nexternal control plane · istiod in " + fleet.ExternalIstiodNamespace
		case c.ConfigCluster:
			label += " · config cluster"
		}
		n.nodes = append(n.nodes, node{id: "c_" + c.Name, label: label, kind: string(c.Role)})
		if c.Role == fleet.ExternalControlPlane {
			addr := "address from its load balancer"
			if c.IstiodGateway != nil {
				addr = c.IstiodGateway.Address
			}
			gw := "igw_" + c.Name
			n.nodes = append(n.nodes, node{id: gw, label: "istiod gateway\n" + addr, kind: "gateway"})
			g.edges = append(g.edges, edge{from: "c_" + c.Name, to: gw, plain: true})
		}
		// The clusters that get an east-west gateway, as generator/mesh
		// plans them.
		if f.NeedsEastWestGateway(c) {
			addr := "address from its load balancer"
			if c.EastWestGateway != nil {
				addr = c.EastWestGateway.Address
			}
			gw := "gw_" + c.Name
			n.nodes = append(n.nodes, node{id: gw, label: "east-west gateway\n" + addr, kind: "gateway"})
			g.edges = append(g.edges, edge{from: "c_" + c.Name, to: gw, plain: true})
		}
	}
	for _, c := range f.Clusters {
		if c.Role == fleet.Remote && c.ControlPlane != "" {
			label := "control plane"
			if c.ConfigCluster {
				label = "control plane, reads mesh config"
			}
			g.edges = append(g.edges, edge{from: "c_" + c.Name, to: "c_" + c.ControlPlane, label: label})
		}
	}
	return g
}

// mermaid writes a Mermaid flowchart. Node ids are derived from cluster
// names (DNS labels) with a prefix, so no name can clash with a Mermaid
// keyword such as "end".
func (g graph) mermaid(w io.Writer) {
	id := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
	label := func(s string) string {
		return `"` + strings.NewReplacer(`"`, "#quot;", "\n", "<br/>").Replace(s) + `"`
	}
	fmt.Fprintf(w, "---\ntitle: %s\n---\nflowchart LR\n", strconv.Quote(g.title))
	byKind := map[string][]string{}
	var kinds []string
	for i, n := range g.networks {
		fmt.Fprintf(w, "  subgraph net%d[%s]\n", i, label("network "+n.name))
		for _, nd := range n.nodes {
			open, closing := "[", "]"
			switch nd.kind {
			case string(fleet.Remote):
				open, closing = "(", ")"
			case "gateway":
				open, closing = "{{", "}}"
			case string(fleet.Primary):
			default: // another role, such as an external control plane
				open, closing = "[[", "]]"
			}
			fmt.Fprintf(w, "    %s%s%s%s\n", id(nd.id), open, label(nd.label), closing)
			if len(byKind[nd.kind]) == 0 {
				kinds = append(kinds, nd.kind)
			}
			byKind[nd.kind] = append(byKind[nd.kind], id(nd.id))
		}
		fmt.Fprintln(w, "  end")
	}
	for _, e := range g.edges {
		switch {
		case e.plain:
			fmt.Fprintf(w, "  %s --- %s\n", id(e.from), id(e.to))
		default:
			fmt.Fprintf(w, "  %s -->|%s| %s\n", id(e.from), label(e.label), id(e.to))
		}
	}
	styles := map[string]string{
		string(fleet.Primary):              "fill:#dbeafe,stroke:#1d4ed8",
		string(fleet.Remote):               "fill:#f1f5f9,stroke:#64748b",
		"gateway":                          "fill:#fef3c7,stroke:#b45309",
		string(fleet.ExternalControlPlane): "fill:#ede9fe,stroke:#6d28d9",
	}
	for _, k := range kinds {
		if s, ok := styles[k]; ok {
			fmt.Fprintf(w, "  classDef %s %s\n", k, s)
			fmt.Fprintf(w, "  class %s %s\n", strings.Join(byKind[k], ","), k)
		}
	}
}

// dot writes a Graphviz digraph with one cluster subgraph per network.
func (g graph) dot(w io.Writer) {
	q := strconv.Quote
	fmt.Fprintf(w, "digraph mesh {\n  label=%s;\n  labelloc=t;\n  rankdir=LR;\n  node [fontname=\"sans-serif\"];\n", q(g.title))
	for i, n := range g.networks {
		fmt.Fprintf(w, "  subgraph cluster_net%d {\n    label=%s;\n", i, q("network "+n.name))
		for _, nd := range n.nodes {
			attrs := "shape=box"
			switch nd.kind {
			case string(fleet.Primary):
				attrs = `shape=box, style="filled,bold", fillcolor="#dbeafe"`
			case string(fleet.Remote):
				attrs = `shape=box, style="filled,rounded", fillcolor="#f1f5f9"`
			case "gateway":
				attrs = `shape=hexagon, style=filled, fillcolor="#fef3c7"`
			case string(fleet.ExternalControlPlane):
				attrs = `shape=box, style="filled,bold,dashed", fillcolor="#ede9fe"`
			}
			fmt.Fprintf(w, "    %s [label=%s, %s];\n", q(nd.id), q(nd.label), attrs)
		}
		fmt.Fprintln(w, "  }")
	}
	for _, e := range g.edges {
		switch {
		case e.plain:
			fmt.Fprintf(w, "  %s -> %s [arrowhead=none];\n", q(e.from), q(e.to))
		default:
			fmt.Fprintf(w, "  %s -> %s [label=%s];\n", q(e.from), q(e.to), q(e.label))
		}
	}
	fmt.Fprintln(w, "}")
}
