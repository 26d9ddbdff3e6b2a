// The benchmark suites `npm run bench -- [SUITE]` can run; the first is the default.
import { localSuite } from './local.js';
import { migrateSuite } from './migrate.js';
import { treeSuite } from './tree.js';
import type { Suite } from './suite.js';

export const SUITES: readonly Suite[] = [localSuite, migrateSuite, treeSuite];
