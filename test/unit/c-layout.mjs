// Asks the C compiler about native/include/crm_plan.h: compiles a program
// printing the given values (P("name", expr); lines) and returns them by name.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;

/** P() lines printing offsetof(struct, field) as "struct.field". */
export const offsetLines = (struct, names) => names.map((n) => `  P("${struct}.${n}", offsetof(struct ${struct}, ${n}));`).join('\n');

export function cValues(body) {
  const dir = mkdtempSync(join(tmpdir(), 'crm-layout-'));
  try {
    const src = `#include <stddef.h>
#include <stdio.h>
#include "crm_plan.h"
#define P(name, v) printf("%s %llu\\n", name, (unsigned long long)(v))
int main(void) {
${body}
  return 0;
}
`;
    writeFileSync(join(dir, 'layout.c'), src);
    execFileSync('cc', ['-std=c11', '-Wall', '-Werror', '-I', join(ROOT, 'native/include'), '-o', join(dir, 'layout'), join(dir, 'layout.c')], { stdio: 'pipe' });
    return Object.fromEntries(execFileSync(join(dir, 'layout'), { encoding: 'utf8' }).trim().split('\n').map((l) => {
      const [k, v] = l.split(' ');
      return [k, Number(v)];
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
