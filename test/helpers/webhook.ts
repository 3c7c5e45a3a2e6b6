/** A version-4 webhook body with one firing alert, as Alertmanager sends it. */
export function firingWebhook(alertname: string, fingerprint: string, opts: { labels?: Record<string, string>; startsAt?: string } = {}) {
  return {
    version: '4', groupKey: `{}:{alertname="${alertname}"}`, truncatedAlerts: 0, status: 'firing', receiver: 'remediate',
    groupLabels: { alertname }, commonLabels: {}, commonAnnotations: {}, externalURL: 'http://127.0.0.1:9093',
    alerts: [{
      status: 'firing', labels: { alertname, ...opts.labels }, annotations: { summary: 'test' },
      startsAt: opts.startsAt ?? new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', generatorURL: '', fingerprint,
    }],
  };
}

/** Posts a webhook body with the test services' bearer token. */
export function postWebhook(baseUrl: string, body: unknown): Promise<Response> {
  return fetch(`${baseUrl}/webhooks/alertmanager`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer test-webhook-token' },
    body: JSON.stringify(body),
  });
}
