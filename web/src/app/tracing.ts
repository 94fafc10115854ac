// Browser tracing: a span per user action (and per page load), with the
// fetch spans of its API calls as children, so one trace runs from the
// click through the gateway to every service behind it.

import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { DocumentLoadInstrumentation } from '@opentelemetry/instrumentation-document-load';
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { WebTracerProvider } from '@opentelemetry/sdk-trace-web';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Scope } from '../common/api';

declare const __APP_VERSION__: string;

const REDACTED = '[redacted]';
// Each also matches its URL-encoded form (`%40`, `+`, `%20`): a search
// term typed into the catalog ends up in the fetch span's `url.full`.
const PATTERNS: readonly RegExp[] = [
  // An email address.
  /[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/gi,
  // A bearer token, or a JWT wherever it appears (they start with `eyJ`, `{"`).
  /Bearer(?:\s|\+|%20)+[^\s&]+/gi,
  /eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,2}/g,
  // A card number: 13 to 19 digits, maybe grouped with spaces or dashes.
  /(?<![0-9])[0-9](?:(?:[ +-]|%20)?[0-9]){12,18}(?![0-9])/g,
];

export function redact(value: string): string {
  let out = value;
  for (const pattern of PATTERNS) out = out.replace(pattern, REDACTED);
  return out;
}

type AttributeValue = ReadableSpan['attributes'][string];

function redactValue(value: AttributeValue): AttributeValue {
  if (typeof value === 'string') return redact(value);
  if (Array.isArray(value)) {
    return value.map((v: unknown) => (typeof v === 'string' ? redact(v) : v)) as AttributeValue;
  }
  return value;
}

function changed(a: AttributeValue, b: AttributeValue): boolean {
  return Array.isArray(a) && Array.isArray(b) ? a.some((v, i) => v !== b[i]) : a !== b;
}

/**
 * Replaces what looks like an email address, a bearer token/JWT or a card
 * number in span attributes and event attributes with "[redacted]", before any
 * exporter sees the span. Registered first, so it runs before the batch
 * processor queues the span.
 */
class RedactingSpanProcessor implements SpanProcessor {
  onStart(span: Span): void {
    this.scrub(span);
  }

  onEnding(span: Span): void {
    this.scrub(span);
  }

  onEnd(span: ReadableSpan): void {
    // The span is read-only by now; its records are not frozen, and this
    // runs before the batch processor queues it.
    const attributes = span.attributes as Record<string, AttributeValue>;
    for (const [key, value] of Object.entries(attributes)) {
      const clean = redactValue(value);
      if (changed(value, clean)) attributes[key] = clean;
    }
    for (const event of span.events) {
      const eventAttributes = event.attributes as Record<string, AttributeValue> | undefined;
      if (!eventAttributes) continue;
      for (const [key, value] of Object.entries(eventAttributes)) {
        const clean = redactValue(value);
        if (changed(value, clean)) eventAttributes[key] = clean;
      }
    }
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  private scrub(span: Span): void {
    for (const [key, value] of Object.entries(span.attributes)) {
      const clean = redactValue(value);
      if (clean !== undefined && changed(value, clean)) span.setAttribute(key, clean);
    }
  }
}

let tracer = trace.getTracer('learnsphere-web');

/**
 * Sets tracing up. `otlpTracesUrl` empty: spans are still made (so every API
 * call carries `traceparent`) but nothing is exported.
 */
export function initTracing(otlpTracesUrl: string): void {
  try {
    const spanProcessors: SpanProcessor[] = [new RedactingSpanProcessor()];
    if (otlpTracesUrl) {
      // `headers: {}` keeps the exporter on fetch (older versions used
      // sendBeacon without headers). A failed export is retried and then
      // dropped quietly: no diag logger is registered, so nothing is printed.
      const exporter = new OTLPTraceExporter({ url: otlpTracesUrl, headers: {} });
      spanProcessors.push(new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 }));
    }
    const provider = new WebTracerProvider({
      resource: defaultResource().merge(
        resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'web', [ATTR_SERVICE_VERSION]: __APP_VERSION__ }),
      ),
      spanProcessors,
    });
    provider.register();
    registerInstrumentations({
      tracerProvider: provider,
      instrumentations: [
        new FetchInstrumentation({
          ignoreUrls: otlpTracesUrl ? [otlpTracesUrl, new URL(otlpTracesUrl, location.href).href] : [],
          clearTimingResources: true,
        }),
        new DocumentLoadInstrumentation(),
      ],
    });
    tracer = provider.getTracer('learnsphere-web', __APP_VERSION__);
  } catch {
    // Tracing is an aid: the page works without it.
  }
}

export interface Traced {
  scope: Scope;
  context: Context;
  /** Marks the span as failed (the action's outcome was an error). */
  fail(description: string): void;
}

/**
 * Runs `fn` inside a new internal span `name` (`click Buy this course`,
 * `load catalog`). Its API calls go through `scope`, which makes their fetch
 * spans children of this one. Without `parent` the span starts a new trace.
 */
export async function traced<T>(name: string, fn: (t: Traced) => Promise<T>, parent?: Context): Promise<T> {
  const base = parent ?? ROOT_CONTEXT;
  const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL }, base);
  const ctx = trace.setSpan(base, span);
  const scope: Scope = (f) => context.with(ctx, f);
  try {
    return await fn({
      scope,
      context: ctx,
      fail: (description) => span.setStatus({ code: SpanStatusCode.ERROR, message: redact(description) }),
    });
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw error;
  } finally {
    span.end();
  }
}
