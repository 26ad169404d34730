/** What a model's answer to "give this conversation a title" becomes (`cleanTitle`). */
import { describe, expect, it } from 'vitest';
import { cleanTitle, MODEL_TITLE_MAX_CHARS } from '../src/agent/title.js';

describe('cleanTitle', () => {
  it.each([
    ['Trip to Lisbon', 'Trip to Lisbon'],
    ['"Trip to Lisbon."', 'Trip to Lisbon'],
    ['“Viaje a Lisboa”', 'Viaje a Lisboa'],
    ['Title: Weekly groceries', 'Weekly groceries'],
    ['## **Weekly groceries**', 'Weekly groceries'],
    ['\n\n  Budget   review \t notes\nSecond line ignored', 'Budget review notes'],
    ["'Quoted' twice.'", "Quoted' twice"],
    ['東京旅行の計画', '東京旅行の計画'],
  ])('%j → %j', (answer, title) => {
    expect(cleanTitle(answer)).toBe(title);
  });

  it.each([[''], ['   \n  '], ['""'], ['**'], ['Title:'], ['bad \ud800 surrogate']])('%j → null', (answer) => {
    expect(cleanTitle(answer)).toBeNull();
  });

  it('drops control characters and cuts a long title at a word, within the limit', () => {
    expect(cleanTitle('Plans\u0007 for\u0000 May')).toBe('Plans for May');
    const long = cleanTitle(`${'word '.repeat(40)}end`);
    expect(long?.length).toBeLessThanOrEqual(MODEL_TITLE_MAX_CHARS);
    expect(long?.endsWith('word')).toBe(true);
    const unbroken = cleanTitle('x'.repeat(200));
    expect(unbroken).toBe('x'.repeat(MODEL_TITLE_MAX_CHARS));
  });
});
