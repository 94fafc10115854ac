// The pages' response headers: a strict Content-Security-Policy (no inline
// script or style; the learner app may send its spans to the configured
// OTLP endpoint and nowhere else) and nosniff, on the learner app the
// gateway serves and on the console loadgen serves.
import { expect, test } from './fixtures';

function directives(csp: string | undefined): Map<string, string[]> {
  expect(csp, 'Content-Security-Policy').toBeTruthy();
  return new Map(
    (csp ?? '')
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map((d) => [d[0] ?? '', d.slice(1)] as const),
  );
}

function expectStrict(policy: Map<string, string[]>): void {
  expect(policy.get('default-src')).toEqual(["'none'"]);
  expect(policy.get('script-src')).toEqual(["'self'"]);
  expect(policy.get('style-src')).toEqual(["'self'"]);
  expect(policy.get('base-uri')).toEqual(["'none'"]);
  expect(policy.get('form-action')).toEqual(["'none'"]);
  expect(policy.get('frame-ancestors')).toEqual(["'none'"]);
}

test('the learner app is served with a strict CSP and nosniff', async ({ request, system }) => {
  const response = await request.get(`${system.gatewayUrl}/`);
  expect(response.status()).toBe(200);
  const headers = response.headers();
  expect(headers['content-type']).toMatch(/^text\/html/);
  expect(headers['x-content-type-options']).toBe('nosniff');
  const policy = directives(headers['content-security-policy']);
  expectStrict(policy);
  // The browser's spans may go to the receiver, and nowhere else.
  expect(policy.get('connect-src')).toEqual(["'self'", new URL(system.otlpTracesUrl).origin]);
  const html = await response.text();
  expect(html).not.toContain('<!--learnsphere-config-->');
  expect(html).toContain(`<meta name="learnsphere-otlp-traces-url" content="${system.otlpTracesUrl}">`);
  expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i); // no inline script
  expect(html).not.toMatch(/<style|\sstyle=/i); // no inline style
  for (const asset of ['/assets/app.js', '/assets/app.css']) {
    const a = await request.get(`${system.gatewayUrl}${asset}`);
    expect(a.status(), asset).toBe(200);
    expect(a.headers()['x-content-type-options'], asset).toBe('nosniff');
  }
});

test('the console is served with a strict CSP and nosniff', async ({ request, system }) => {
  const response = await request.get(`${system.controlUrl}/console`);
  expect(response.status()).toBe(200);
  const headers = response.headers();
  expect(headers['content-type']).toMatch(/^text\/html/);
  expect(headers['x-content-type-options']).toBe('nosniff');
  const policy = directives(headers['content-security-policy']);
  expectStrict(policy);
  expect(policy.get('connect-src')).toEqual(["'self'"]);
  const html = await response.text();
  expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
  expect(html).not.toMatch(/<style|\sstyle=/i);
  for (const asset of ['/console/assets/console.js', '/console/assets/console.css']) {
    const a = await request.get(`${system.controlUrl}${asset}`);
    expect(a.status(), asset).toBe(200);
    expect(a.headers()['x-content-type-options'], asset).toBe('nosniff');
  }
});
