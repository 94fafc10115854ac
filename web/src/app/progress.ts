import { formatPercent } from '../common/format';

/** "3 of 12 lessons complete (25%)". */
export function progressText(completed: number, total: number, percent: number): string {
  return `${completed} of ${total} ${total === 1 ? 'lesson' : 'lessons'} complete (${formatPercent(percent)})`;
}
