// Package install holds the installers, one small package each, that
// express a plan's control planes and gateways: istioctl (IstioOperator
// files), helm (Helm releases) and sail (Sail Operator resources).
package install

import (
	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/install/helm"
	"github.com/meshfleet/meshfleet/generator/install/istioctl"
	"github.com/meshfleet/meshfleet/generator/install/sail"
	"github.com/meshfleet/meshfleet/generator/plan"
)

// For returns the installer of a fleet's spec.installer.
func For(name string) plan.Installer {
	switch name {
	case fleet.InstallerHelm:
		return helm.Installer{}
	case fleet.InstallerSail:
		return sail.Installer{}
	}
	return istioctl.Installer{}
}
