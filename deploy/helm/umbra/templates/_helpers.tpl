{{/* Object names: the release name, then the component. */}}
{{- define "umbra.proxy" -}}{{ .Release.Name }}-proxy{{- end }}
{{- define "umbra.proxyAdmin" -}}{{ .Release.Name }}-proxy-admin{{- end }}
{{- define "umbra.controller" -}}{{ .Release.Name }}-controller{{- end }}
{{- define "umbra.provisioner" -}}{{ .Release.Name }}-provisioner{{- end }}
{{- define "umbra.config" -}}{{ .Release.Name }}-config{{- end }}

{{/* Labels on every object. */}}
{{- define "umbra.labels" -}}
app.kubernetes.io/part-of: umbra
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* The restricted pod security context every Umbra pod runs with. */}}
{{- define "umbra.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- define "umbra.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "umbra.tokenEnv" -}}
- name: UMBRA_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.adminTokenSecret }}
      key: token
{{- end }}
