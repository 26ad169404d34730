/**
 * The oldest Node.js the server and its commands run on, as in package.json's `engines`
 * (>= 22.17). An older Node would start the server and then fail every chat request
 * (`Map.groupBy is not a function`), so it is refused at once instead. `npm start`, `npm test`
 * and the other npm scripts run the Node.js 24 that `npm install` puts in `node_modules/.bin`
 * (the `node` package), whatever the machine's own `node` is; this catches a build started
 * directly with an older `node`.
 */
const OLDEST = { major: 22, minor: 17 };

/** Throws, saying what was found and what to do, when `version` (default: this Node's) is older than 22.17. */
export function requireSupportedNode(version: string = process.versions.node): void {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (major > OLDEST.major || (major === OLDEST.major && minor >= OLDEST.minor)) return;
  throw new Error(
    `Node.js >= ${OLDEST.major}.${OLDEST.minor} is needed, found v${version}; run it through npm (npm start, npm run migrate, ...), ` +
      'which uses the Node.js 24 that npm install put in node_modules/.bin, or install Node.js 24 (https://nodejs.org)',
  );
}
