package deploy

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"

	"github.com/observer-dev/observer/internal/config"
)

// manifest is the part of a Kubernetes object these checks read.
type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		// DaemonSet
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		// Service
		ClusterIP   string            `yaml:"clusterIP"`
		SvcSelector map[string]string `yaml:"-"`
		Ports       []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		// ServiceMonitor
		Endpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
}

type podSpec struct {
	HostPID     bool `yaml:"hostPID"`
	HostIPC     bool `yaml:"hostIPC"`
	HostNetwork bool `yaml:"hostNetwork"`
	Containers  []struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe probe `yaml:"readinessProbe"`
		LivenessProbe  probe `yaml:"livenessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			RunAsUser    *int `yaml:"runAsUser"`
			Capabilities struct {
				Add  []string `yaml:"add"`
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name     string `yaml:"name"`
		HostPath struct {
			Path string `yaml:"path"`
			Type string `yaml:"type"`
		} `yaml:"hostPath"`
	} `yaml:"volumes"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

func loadManifests(t *testing.T) map[string]manifest {
	t.Helper()
	out := map[string]manifest{}
	for _, f := range []string{"daemonset.yaml", "service.yaml", "servicemonitor.yaml"} {
		data, err := readRepoFile(filepath.Join("deploy", "kubernetes", f))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.SetStrict(false)
		for {
			var m manifest
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if _, dup := out[m.Kind]; dup {
				t.Fatalf("%s: a second %s", f, m.Kind)
			}
			out[m.Kind] = m
		}
	}
	// The Service's selector sits where the DaemonSet's has matchLabels.
	for _, f := range []string{"service.yaml"} {
		data, _ := readRepoFile(filepath.Join("deploy", "kubernetes", f))
		var svc struct {
			Spec struct {
				Selector map[string]string `yaml:"selector"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(data, &svc); err != nil {
			t.Fatal(err)
		}
		m := out["Service"]
		m.Spec.SvcSelector = svc.Spec.Selector
		out["Service"] = m
	}
	return out
}

// TestKubernetesManifests checks what the observer needs from its DaemonSet
// (no cluster here to apply it): the host's namespaces, the mounts and
// capabilities the image test runs with, flags the real parser accepts,
// probes on /readyz and /healthz, requests, and a Service and ServiceMonitor
// that select its pods and port.
func TestKubernetesManifests(t *testing.T) {
	ms := loadManifests(t)
	ds, ok := ms["DaemonSet"]
	if !ok {
		t.Fatal("no DaemonSet")
	}
	pod := ds.Spec.Template.Spec
	if !pod.HostPID || !pod.HostIPC || !pod.HostNetwork {
		t.Errorf("hostPID %v hostIPC %v hostNetwork %v: the observer needs the node's processes, semaphores and links", pod.HostPID, pod.HostIPC, pod.HostNetwork)
	}
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod template's labels", k, v)
		}
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !strings.HasPrefix(c.Image, "observer:") {
		t.Errorf("image %q, want the one make image tags (observer:VERSION)", c.Image)
	}
	cfg, err := config.Parse(c.Args, config.Defaults{}, io.Discard)
	if err != nil {
		t.Fatalf("args %v: the observer refuses them: %v", c.Args, err)
	}
	if cfg.Socket == "" || !strings.HasPrefix(cfg.Forensics.CaptureDir, "/var/lib/observer/") {
		t.Errorf("socket %q, capture dir %q: want the socket on and captures under the mounted /var/lib/observer", cfg.Socket, cfg.Forensics.CaptureDir)
	}
	var port int
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			port = p.ContainerPort
		}
	}
	if _, listenPort, _ := strings.Cut(cfg.Listen, ":"); port == 0 || listenPort != "9810" || port != 9810 {
		t.Errorf("--listen %q, containerPort %d: want both 9810", cfg.Listen, port)
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		c.ReadinessProbe.HTTPGet.Port != "metrics" || c.LivenessProbe.HTTPGet.Port != "metrics" {
		t.Errorf("probes %+v / %+v: want /readyz and /healthz on the metrics port (open without credentials)", c.ReadinessProbe, c.LivenessProbe)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	// The capabilities and mounts the image test ran with under dockerd.
	var wantCaps []string
	wantMounts := map[string]bool{}
	flags := RunFlags("/var/run/docker.sock", "/run/observer")
	for i, f := range flags {
		if cp, ok := strings.CutPrefix(f, "--cap-add="); ok {
			wantCaps = append(wantCaps, cp)
		}
		if f == "-v" {
			host, _, _ := strings.Cut(flags[i+1], ":")
			wantMounts[host] = true
		}
	}
	add := slices.Clone(c.SecurityContext.Capabilities.Add)
	slices.Sort(add)
	slices.Sort(wantCaps)
	if !slices.Equal(add, wantCaps) || !slices.Contains(c.SecurityContext.Capabilities.Drop, "ALL") {
		t.Errorf("capabilities add %v drop %v, want drop ALL, add %v", add, c.SecurityContext.Capabilities.Drop, wantCaps)
	}
	volumes := map[string]string{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v.HostPath.Path
	}
	mounted := map[string]bool{}
	for _, m := range c.VolumeMounts {
		host := volumes[m.Name]
		if host != m.MountPath {
			t.Errorf("mount %s at %s from host %q: want the same path on both sides", m.Name, m.MountPath, host)
		}
		mounted[host] = true
	}
	for host := range wantMounts {
		if !mounted[host] {
			t.Errorf("host path %s is not mounted (the image test needs it)", host)
		}
	}
	if !mounted["/var/lib/observer"] {
		t.Error("captures (/var/lib/observer) are not kept on the node")
	}

	svc, ok := ms["Service"]
	if !ok {
		t.Fatal("no Service")
	}
	for k, v := range svc.Spec.SvcSelector {
		if ds.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not select the observer's pods", k, v)
		}
	}
	if len(svc.Spec.SvcSelector) == 0 || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9810 || svc.Spec.Ports[0].TargetPort != "metrics" {
		t.Errorf("Service %+v: want a selector and port 9810 to the metrics port", svc.Spec)
	}
	sm, ok := ms["ServiceMonitor"]
	if !ok {
		t.Fatal("no ServiceMonitor")
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Metadata.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %s=%s does not select the Service", k, v)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v: want /metrics on the Service's port %q", sm.Spec.Endpoints, svc.Spec.Ports[0].Name)
	}
	for kind, m := range ms {
		if kind != "Namespace" && m.Metadata.Namespace != ms["DaemonSet"].Metadata.Namespace {
			t.Errorf("%s in namespace %q, want %q", kind, m.Metadata.Namespace, ds.Metadata.Namespace)
		}
	}
}
