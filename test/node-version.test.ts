/**
 * An older Node.js than package.json's `engines` is refused at once by the server and the CLI,
 * with the version found and what to do (it would otherwise fail every chat request later).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { requireSupportedNode } from '../src/node-version.js';

describe('requireSupportedNode', () => {
  it('refuses Node.js older than 22.17, saying what it found and how to get Node.js 24', () => {
    for (const old of ['20.20.2', '22.16.0', '18.0.0']) {
      expect(() => requireSupportedNode(old)).toThrow(
        `Node.js >= 22.17 is needed, found v${old}; run it through npm (npm start, npm run migrate, ...), which uses the Node.js 24 that npm install put in node_modules/.bin, or install Node.js 24 (https://nodejs.org)`,
      );
    }
  });

  it('accepts 22.17 and later, this Node.js included', () => {
    for (const supported of ['22.17.0', '22.20.1', '23.0.0', '24.21.0', '25.1.0', process.versions.node]) {
      expect(() => requireSupportedNode(supported)).not.toThrow();
    }
  });

  it('matches the engines of package.json, and npm scripts run the Node.js 24 of the `node` dependency', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string }; dependencies: Record<string, string> };
    expect(pkg.engines.node).toBe('>=22.17');
    expect(pkg.dependencies.node).toMatch(/^24\.\d+\.\d+$/);
    expect(process.versions.node.split('.')[0]).toBe('24');
  });
});
