{{/* The bundled Redis (redis.bundled): names, labels, addresses, checks. */}}

{{- define "kafka-chatops.redis.fullname" -}}
{{- printf "%s-redis" (include "kafka-chatops.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kafka-chatops.redis.headless" -}}
{{- printf "%s-headless" (include "kafka-chatops.redis.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Not the bot's selector labels: the bot's Service, PDB and anti-affinity must not select these pods. */}}
{{- define "kafka-chatops.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kafka-chatops.name" . }}-redis
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "kafka-chatops.redis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kafka-chatops.redis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.redis.bundled.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Pod <ordinal>'s host name in the headless Service. */}}
{{- define "kafka-chatops.redis.podHost" -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "kafka-chatops.redis.fullname" .root) (int .ordinal) (include "kafka-chatops.redis.headless" .root) .root.Release.Namespace .root.Values.redis.bundled.clusterDomain }}
{{- end }}

{{/* Every pod's Sentinel, host:26379, space-separated (the scripts' SENTINEL_ADDRESSES). */}}
{{- define "kafka-chatops.redis.sentinelAddresses" -}}
{{- $root := . }}
{{- $addresses := list }}
{{- range $i := until (int .Values.redis.bundled.replicas) }}
{{- $addresses = append $addresses (printf "%s:26379" (include "kafka-chatops.redis.podHost" (dict "root" $root "ordinal" $i))) }}
{{- end }}
{{- join " " $addresses }}
{{- end }}

{{/* The bot's REDIS_URL: every pod's Sentinel; the password comes from a file. */}}
{{- define "kafka-chatops.redis.url" -}}
{{- printf "redis+sentinel://%s/%s/0" (include "kafka-chatops.redis.sentinelAddresses" . | replace " " ",") .Values.redis.bundled.masterName }}
{{- end }}

{{- define "kafka-chatops.validateBundledRedis" -}}
{{- $b := .Values.redis.bundled }}
{{- if $b.enabled }}
{{- if .Values.redis.sentinel.enabled }}
{{- fail "redis.bundled.enabled and redis.sentinel.enabled are both set: the bot uses one Redis; give the chart's own (bundled) or an existing one with Sentinel (sentinel), not both" }}
{{- end }}
{{- if .Values.redis.existingSecret }}
{{- fail (printf "redis.existingSecret is %q but redis.bundled.enabled makes the chart's own Redis: the bot would not use that Secret's REDIS_URL; set redis.existingSecret to \"\" (or turn redis.bundled.enabled off)" .Values.redis.existingSecret) }}
{{- end }}
{{- if not $b.auth.existingSecret }}
{{- fail "redis.bundled.auth.existingSecret is empty: create a Secret holding the Redis password (key redis.bundled.auth.key) and give its name; the chart makes no Secret" }}
{{- end }}
{{- if lt (int $b.replicas) 3 }}
{{- fail (printf "redis.bundled.replicas is %v: give 3 or more (the Sentinels need a majority of 3 to fail over)" $b.replicas) }}
{{- end }}
{{- if ge (int .Values.redis.waitReplicas) (int $b.replicas) }}
{{- fail (printf "redis.waitReplicas is %v but the bundled Redis has %v replicas of the master: give 1 to %v" .Values.redis.waitReplicas (sub (int $b.replicas) 1) (sub (int $b.replicas) 1)) }}
{{- end }}
{{- if not (regexMatch "^[A-Za-z0-9._-]+$" (toString $b.masterName)) }}
{{- fail (printf "redis.bundled.masterName is %q: give letters, digits, '.', '_', '-'" (toString $b.masterName)) }}
{{- end }}
{{- if not (has $b.podAntiAffinity (list "soft" "required" "none")) }}
{{- fail (printf "redis.bundled.podAntiAffinity is %q: give soft, required or none" $b.podAntiAffinity) }}
{{- end }}
{{- end }}
{{- end }}
