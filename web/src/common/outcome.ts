// The one live region where every user action says how it went:
// <div id="outcome" role="status" aria-live="polite">, switched to
// role="alert" for errors. It stays in the document while empty (an empty
// region collapses in CSS) so that assistive technology keeps watching it.

import { describeProblem, type Problem } from './api';
import { el, replace, safeHttpUrl, type Child } from './dom';

export interface OutcomeOptions {
  traceId?: string | null;
  /** More nodes after the sentence (a link to "My courses"). */
  extra?: Child[];
}

export class Outcome {
  readonly node: HTMLDivElement;
  private jaegerUrl: string | null = null;

  constructor(node?: HTMLDivElement) {
    this.node = node ?? el('div', { id: 'outcome' });
    this.setMode('status');
  }

  /** Where trace links point; null shows the trace id without a link. */
  setJaegerUrl(url: string | null): void {
    this.jaegerUrl = safeHttpUrl(url)?.replace(/\/+$/, '') ?? null;
  }

  success(sentence: string, options: OutcomeOptions = {}): void {
    this.show('status', sentence, options);
  }

  /** An error sentence of the page's own (not from the API). */
  failure(sentence: string, options: OutcomeOptions = {}): void {
    this.show('alert', sentence, options);
  }

  problem(problem: Problem, options: OutcomeOptions = {}): void {
    const traceId = problem.kind === 'error' ? problem.traceId : null;
    this.show('alert', describeProblem(problem), { traceId, ...options });
  }

  clear(): void {
    replace(this.node);
    this.setMode('status');
  }

  /** A link to the trace of an answer, or null without one. */
  traceLink(traceId: string | null | undefined): HTMLElement | null {
    if (!traceId) return null;
    const text = `Trace ${traceId.slice(0, 8)}…`;
    if (!this.jaegerUrl) return el('span', { class: 'trace-id', title: `Trace ${traceId}` }, text);
    return el(
      'a',
      {
        class: 'trace-link',
        href: `${this.jaegerUrl}/trace/${traceId}`,
        target: '_blank',
        rel: 'noopener',
        'aria-label': `Open trace ${traceId} in Jaeger`,
      },
      text,
    );
  }

  private setMode(mode: 'status' | 'alert'): void {
    this.node.setAttribute('role', mode);
    this.node.setAttribute('aria-live', mode === 'alert' ? 'assertive' : 'polite');
    this.node.className = `outcome outcome-${mode === 'alert' ? 'error' : 'ok'}`;
  }

  private show(mode: 'status' | 'alert', sentence: string, options: OutcomeOptions): void {
    const text = sentence.trim() === '' ? 'Done.' : sentence;
    this.setMode(mode);
    const trace = this.traceLink(options.traceId);
    replace(this.node, el('p', { class: 'outcome-text' }, text), trace, ...(options.extra ?? []));
  }
}
