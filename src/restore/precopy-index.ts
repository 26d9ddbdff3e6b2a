// Where the latest copy of each pre-copied page of one process lies (in the
// image file, or in the staging memfd of a stream). A pre-copy sends a
// process's pages in rounds, and a page sent again in a later round replaces
// its earlier copy. The index keeps, in address order, disjoint segments of
// pages whose copies lie one after the other: adding a record says which
// earlier copies it replaced (a stream frees them at once), and a task's
// PRECOPY_USE ranges become file chunks that never overlap.

/** Pages [addr, addr+len) whose copy lies at fileOffset. */
export interface PrecopiedPages {
  addr: number;
  len: number;
  fileOffset: number;
}

const part = (s: PrecopiedPages, start: number, end: number): PrecopiedPages => ({ addr: start, len: end - start, fileOffset: s.fileOffset + (start - s.addr) });

export class PrecopyIndex {
  private readonly segs: PrecopiedPages[] = [];

  /** Index of the first segment that ends after addr. */
  private firstEndingAfter(addr: number): number {
    let lo = 0;
    let hi = this.segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.segs[mid]!;
      if (s.addr + s.len <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Records a copy of [addr, addr+len) at fileOffset; returns the earlier
   * copies it replaces (parts of them, with their file offsets). */
  add(addr: number, len: number, fileOffset: number): PrecopiedPages[] {
    const end = addr + len;
    const first = this.firstEndingAfter(addr);
    let last = first;
    const replaced: PrecopiedPages[] = [];
    const kept: PrecopiedPages[] = [];
    for (; last < this.segs.length && this.segs[last]!.addr < end; last++) {
      const s = this.segs[last]!;
      const sEnd = s.addr + s.len;
      if (s.addr < addr) kept.push(part(s, s.addr, addr));
      replaced.push(part(s, Math.max(s.addr, addr), Math.min(sEnd, end)));
      if (sEnd > end) kept.push(part(s, end, sEnd));
    }
    const mine = { addr, len, fileOffset };
    const left = kept.filter((k) => k.addr < addr);
    const right = kept.filter((k) => k.addr >= end);
    this.segs.splice(first, last - first, ...left, mine, ...right);
    return replaced;
  }

  /** The latest copies of the pages of the given sorted ranges, as file
   * chunks in address order (a page with no copy is simply not there: the
   * caller compares the total). */
  chunks(use: { start: number; len: number }[]): PrecopiedPages[] {
    const out: PrecopiedPages[] = [];
    for (const u of use) {
      const uEnd = u.start + u.len;
      for (let i = this.firstEndingAfter(u.start); i < this.segs.length && this.segs[i]!.addr < uEnd; i++) {
        const s = this.segs[i]!;
        out.push(part(s, Math.max(s.addr, u.start), Math.min(s.addr + s.len, uEnd)));
      }
    }
    return out;
  }
}
