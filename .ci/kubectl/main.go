// kubectl, built from the k8s.io/kubectl library at the release in .ci/kubectl/VERSION: the same
// commands as the upstream binary (cmd/kubectl of kubernetes/kubernetes), without the cloud auth
// plugins, which the sandbox's kubeconfig does not use.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
