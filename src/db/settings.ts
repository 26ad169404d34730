/**
 * What the server's statements need to know of their connections (the search language new
 * messages are stored with, whether statements may be named), kept in the ORM's driver options so
 * that every `EntityManager` carries its own (tests run several apps in one process). No imports:
 * entities read it.
 */

/** What the server's statements need to know of the connection, kept in the ORM's driver options. */
export type SessionSettings = { searchLanguage: string; prepare: boolean };
export const SETTINGS_KEY = 'statelessChat';

function settingsOf(em: { config: { get(key: 'driverOptions'): unknown } }): SessionSettings | undefined {
  const options = em.config.get('driverOptions') as Record<string, unknown> | undefined;
  return options?.[SETTINGS_KEY] as SessionSettings | undefined;
}

/**
 * The text search configuration new messages of this ORM are stored with (SEARCH_LANGUAGE, else
 * `simple`): every insert of a message names it, so that it never depends on a session setting.
 */
export function searchLanguageOf(em: { config: { get(key: 'driverOptions'): unknown } }): string {
  return settingsOf(em)?.searchLanguage ?? 'simple';
}

/** Whether `direct.ts` may name its statements on this ORM's connections (DATABASE_PREPARE). */
export function preparesStatements(em: { config: { get(key: 'driverOptions'): unknown } }): boolean {
  return settingsOf(em)?.prepare ?? true;
}
