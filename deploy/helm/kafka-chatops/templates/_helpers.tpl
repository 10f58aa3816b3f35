{{- define "kafka-chatops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kafka-chatops.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "kafka-chatops.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "kafka-chatops.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kafka-chatops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kafka-chatops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kafka-chatops.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kafka-chatops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kafka-chatops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kafka-chatops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: give the ServiceAccount to run as when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespaces the bot manages in this Kubernetes cluster: each cluster's `namespace` (the bot's
default: kafka), except clusters reached through a kubeconfig of their own (another Kubernetes
cluster), plus rbac.extraNamespaces. */}}
{{- define "kafka-chatops.managedNamespaces" -}}
{{- $seen := dict }}
{{- range $name, $cluster := .Values.clusters }}
{{- if not ($cluster | default dict).kubeconfig }}
{{- $_ := set $seen (default "kafka" ($cluster | default dict).namespace) true }}
{{- end }}
{{- end }}
{{- range .Values.rbac.extraNamespaces }}
{{- $_ := set $seen . true }}
{{- end }}
{{- keys $seen | sortAlpha | join "," }}
{{- end }}

{{/*
The Strimzi operator Deployments the bot reads (the Kafka versions each operator supports), as YAML:
namespace -> sorted Deployment names. Each cluster's `operator:` block, else the cluster's namespace
and Strimzi's `strimzi-cluster-operator`; clusters behind a kubeconfig of their own are not here.
*/}}
{{- define "kafka-chatops.operatorDeployments" -}}
{{- $byNamespace := dict }}
{{- range $name, $cluster := .Values.clusters }}
{{- $c := $cluster | default dict }}
{{- if not $c.kubeconfig }}
{{- $operator := $c.operator | default dict }}
{{- $ns := default (default "kafka" $c.namespace) $operator.namespace }}
{{- $deployment := default "strimzi-cluster-operator" $operator.deployment }}
{{- $_ := set $byNamespace $ns (append (get $byNamespace $ns | default list) $deployment | uniq | sortAlpha) }}
{{- end }}
{{- end }}
{{- toYaml $byNamespace }}
{{- end }}

{{/*
The Secrets each cluster's Kafka settings name (README "Configuration", Kafka security), as YAML:
namespace -> sorted names. The cluster CA Secret (`tls.ca_secret`, else <kafka>-cluster-ca-cert) of a
cluster with `listener` or `tls` (not with `tls.ca_file`), its `authentication.kafka_user` (the
KafkaUser's Secret has its name) and `authentication.password_secret.name`. Clusters behind a kubeconfig
of their own are not here (that kubeconfig's user needs the rights there).
*/}}
{{- define "kafka-chatops.kafkaSecrets" -}}
{{- $byNamespace := dict }}
{{- range $name, $cluster := .Values.clusters }}
{{- $c := $cluster | default dict }}
{{- if not $c.kubeconfig }}
{{- $ns := default "kafka" $c.namespace }}
{{- $names := list }}
{{- $tls := $c.tls | default dict }}
{{- $auth := $c.authentication | default dict }}
{{- if and (or $c.listener $c.tls) (not $tls.ca_file) }}
{{- $names = append $names (default (printf "%s-cluster-ca-cert" (default $name $c.kafka)) $tls.ca_secret) }}
{{- end }}
{{- with $auth.kafka_user }}{{ $names = append $names . }}{{ end }}
{{- with $auth.password_secret }}{{ $names = append $names .name }}{{ end }}
{{- if $names }}
{{- $_ := set $byNamespace $ns (concat (get $byNamespace $ns | default list) $names | uniq | sortAlpha) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $byNamespace }}
{{- end }}

{{/* Refuse values the bot cannot run with, naming the value and what is valid. */}}
{{- define "kafka-chatops.validate" -}}
{{- if not (has .Values.slack.mode (list "socket" "http")) }}
{{- fail (printf "slack.mode is %q: give socket (Socket Mode) or http (Slack's HTTP requests on /slack/events)" .Values.slack.mode) }}
{{- end }}
{{- if not .Values.slack.existingSecret }}
{{- fail "slack.existingSecret is empty: create a Secret with the Slack tokens (README: Deploy to Kubernetes) and give its name" }}
{{- end }}
{{- include "kafka-chatops.validateBundledRedis" . }}
{{- if .Values.redis.sentinel.enabled }}
{{- if not .Values.redis.sentinel.hosts }}
{{- fail "redis.sentinel.hosts is empty: give the Sentinels' addresses (host:26379), or turn redis.sentinel.enabled off and give REDIS_URL in redis.existingSecret" }}
{{- end }}
{{- if not (regexMatch "^[A-Za-z0-9._-]+$" (toString .Values.redis.sentinel.masterName)) }}
{{- fail (printf "redis.sentinel.masterName is %q: give the name the Sentinels monitor (letters, digits, '.', '_', '-')" (toString .Values.redis.sentinel.masterName)) }}
{{- end }}
{{- range .Values.redis.sentinel.hosts }}
{{- if not (regexMatch "^[A-Za-z0-9._-]+(:[0-9]{1,5})?$" (toString .)) }}
{{- fail (printf "redis.sentinel.hosts has %q: give host or host:port" (toString .)) }}
{{- end }}
{{- end }}
{{- else if and (not .Values.redis.existingSecret) (not .Values.redis.bundled.enabled) }}
{{- fail "redis.existingSecret is empty: create a Secret holding REDIS_URL (redis://, rediss:// or redis+sentinel://) and give its name, or set redis.sentinel.enabled with its hosts" }}
{{- end }}
{{- if not (and (ge (int .Values.redis.waitReplicas) 0) (le (int .Values.redis.waitReplicas) 10)) }}
{{- fail (printf "redis.waitReplicas is %v: give 0 (do not wait) to 10" .Values.redis.waitReplicas) }}
{{- end }}
{{- if and .Values.ingress.enabled (ne .Values.slack.mode "http") }}
{{- fail "ingress.enabled needs slack.mode=http: in Socket Mode the bot connects out to Slack and serves no Slack requests" }}
{{- end }}
{{- if not .Values.clusters }}
{{- fail "clusters is empty: name at least one Kafka cluster (its namespace, channel and approvers)" }}
{{- end }}
{{- $kubeconfigs := .Values.kubeconfigs }}
{{- range $name, $cluster := .Values.clusters }}
{{- $path := toString (($cluster | default dict).kubeconfig | default "") }}
{{- if and $path (hasPrefix (printf "%s/" $kubeconfigs.mountPath) $path) (not $kubeconfigs.existingSecret) }}
{{- fail (printf "clusters.%s.kubeconfig is %s, under kubeconfigs.mountPath, but kubeconfigs.existingSecret is empty: create a Secret whose keys are kubeconfig files and give its name" $name $path) }}
{{- end }}
{{- end }}
{{- if not (has .Values.podAntiAffinity (list "soft" "required" "none")) }}
{{- fail (printf "podAntiAffinity is %q: give soft, required or none" .Values.podAntiAffinity) }}
{{- end }}
{{- if eq (int .Values.metrics.port) (int .Values.slack.port) }}
{{- fail "metrics.port and slack.port are the same port: give them different ones" }}
{{- end }}
{{- end }}

{{/* REDIS_URL of redis.sentinel: no password in it (that comes from a file). */}}
{{- define "kafka-chatops.sentinelUrl" -}}
{{- $s := .Values.redis.sentinel -}}
{{- printf "%s://%s/%s/%v" (ternary "rediss+sentinel" "redis+sentinel" $s.tls) (join "," $s.hosts) $s.masterName (int $s.db) -}}
{{- end }}
