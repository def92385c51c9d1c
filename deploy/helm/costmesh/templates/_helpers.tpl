{{/* Names: "<release>-costmesh", or the release alone when it already says costmesh. */}}
{{- define "costmesh.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A component's object name, e.g. "prod-costmesh-cache"; dict "root" $ "name" "cache". */}}
{{- define "costmesh.name" -}}
{{- printf "%s-%s" (include "costmesh.fullname" .root) .name -}}
{{- end -}}

{{- define "costmesh.selectorLabels" -}}
app.kubernetes.io/name: costmesh
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "costmesh.labels" -}}
{{ include "costmesh.selectorLabels" . }}
app.kubernetes.io/part-of: costmesh
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "costmesh.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The Secret every credential is read from: the user's, or the one this chart generates. */}}
{{- define "costmesh.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "costmesh.fullname" .)) -}}
{{- end -}}

{{/* An env var from a key of that Secret; dict "root" $ "env" NAME "key" KEY. */}}
{{- define "costmesh.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "costmesh.secretName" .root }}
      key: {{ .key }}
{{- end -}}

{{/* host:port of a mesh service in this release; dict "root" $ "name" "router". */}}
{{- define "costmesh.addr" -}}
{{- printf "%s:%v" (include "costmesh.name" .) (index .root.Values.services .name).port -}}
{{- end -}}

{{- define "costmesh.weaviateUrl" -}}
{{- if .Values.weaviate.enabled -}}
{{- printf "http://%s:8080" (include "costmesh.name" (dict "root" . "name" "weaviate")) -}}
{{- else -}}
{{- required "weaviate.externalUrl is required with weaviate.enabled=false" .Values.weaviate.externalUrl -}}
{{- end -}}
{{- end -}}

{{- define "costmesh.weaviateGrpcPort" -}}
{{- if .Values.weaviate.enabled }}50051{{ else }}{{ .Values.weaviate.externalGrpcPort }}{{ end -}}
{{- end -}}

{{/* The batch lane's queue: kafka with an in-chart or external Kafka, else Redis Streams. */}}
{{- define "costmesh.queue" -}}
{{- if or .Values.kafka.enabled .Values.kafka.externalBootstrapServers }}kafka{{ else }}redis{{ end -}}
{{- end -}}

{{- define "costmesh.kafkaBootstrap" -}}
{{- if .Values.kafka.enabled -}}
{{- printf "%s:9092" (include "costmesh.name" (dict "root" . "name" "kafka")) -}}
{{- else -}}
{{- .Values.kafka.externalBootstrapServers -}}
{{- end -}}
{{- end -}}

{{- define "costmesh.rayServeUrl" -}}
{{- printf "http://%s-serve-svc:8000" (include "costmesh.name" (dict "root" . "name" "models")) -}}
{{- end -}}

{{/* Credentials for anything outside the chart come only from the user's Secret, never from values. */}}
{{- define "costmesh.checkSecrets" -}}
{{- if not .Values.secrets.existingSecret -}}
{{- if not .Values.redis.enabled -}}
{{- fail "redis.enabled=false: put the external Redis URL under key redis-url of a Secret named by secrets.existingSecret" -}}
{{- end -}}
{{- if not .Values.weaviate.enabled -}}
{{- fail "weaviate.enabled=false: put the external Weaviate API key under key weaviate-api-key of a Secret named by secrets.existingSecret" -}}
{{- end -}}
{{- if .Values.inference.openai -}}
{{- fail "inference.openai=true: put the OpenAI key under key openai-api-key of a Secret named by secrets.existingSecret" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "costmesh.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
