package mesos

import "strconv"

// MarathonApp is the part of a Marathon app definition that gives the app's
// tasks the secrets of a Plan, in Marathon's secrets format
// (mesosphere/marathon docs/docs/secrets.md; DC/OS Secrets is the plugin that
// resolves them):
//
//	{
//	  "secrets":   {"secret0": {"source": "/spark/keystore"}, "secret1": {"source": "/spark/keystore_password"}},
//	  "env":       {"KEYSHIP_KEYSTORE_PASSWORD": {"secret": "secret1"}},
//	  "container": {"type": "MESOS", "volumes": [{"containerPath": ".keyship/keystore.jks", "secret": "secret0"}]}
//	}
//
// File-based secrets land at containerPath relative to the task's sandbox.
// Merging appends the volumes to the app's container.volumes and adds the
// env and secrets entries.
type MarathonApp struct {
	Env       map[string]MarathonEnvSecret `json:"env,omitempty"`
	Container *MarathonContainer           `json:"container,omitempty"`
	Secrets   map[string]MarathonSecret    `json:"secrets,omitempty"`
}

// MarathonEnvSecret is an app env entry whose value is a secret
// (EnvVarSecret).
type MarathonEnvSecret struct {
	Secret string `json:"secret"`
}

// MarathonContainer is the part of an app's container that keyship fills;
// Type is MESOS, as file-based secrets need the Mesos containerizer.
type MarathonContainer struct {
	Type    string           `json:"type"`
	Volumes []MarathonVolume `json:"volumes"`
}

// MarathonVolume is a file-based secret volume (AppSecretVolume).
type MarathonVolume struct {
	ContainerPath string `json:"containerPath"`
	Secret        string `json:"secret"`
}

// MarathonSecret is an entry of an app's secrets (SecretDef): the secret's
// path in the store.
type MarathonSecret struct {
	Source string `json:"source"`
}

// Marathon returns the app fragment for the items of p that ship by
// reference, and the items it cannot carry: Marathon's secrets name a whole
// secret by its path, so items that ship by value, or by a reference with a
// key, must reach the task another way (fetch URIs, a sandbox). The secrets
// are named secret0, secret1, ... in the order of p.Items; items that refer
// to the same secret share its name.
func (p *Plan) Marathon() (MarathonApp, []Item) {
	var (
		app   MarathonApp
		left  []Item
		names = map[string]string{} // source -> secretN
	)
	name := func(source string) string {
		if n, ok := names[source]; ok {
			return n
		}
		n := "secret" + strconv.Itoa(len(names))
		names[source] = n
		if app.Secrets == nil {
			app.Secrets = map[string]MarathonSecret{}
		}
		app.Secrets[n] = MarathonSecret{Source: source}
		return n
	}
	for _, it := range p.Items {
		if it.Ref == nil || it.Ref.Key != "" {
			left = append(left, it)
			continue
		}
		n := name(it.Ref.Name)
		if it.Env != "" {
			if app.Env == nil {
				app.Env = map[string]MarathonEnvSecret{}
			}
			app.Env[it.Env] = MarathonEnvSecret{Secret: n}
			continue
		}
		if app.Container == nil {
			app.Container = &MarathonContainer{Type: ContainerTypeMesos}
		}
		app.Container.Volumes = append(app.Container.Volumes, MarathonVolume{ContainerPath: it.Path, Secret: n})
	}
	return app, left
}
