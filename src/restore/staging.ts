// Pre-copied pages that arrive in a stream (a migration with --pre-copy).
// They come long before the task they belong to, and a stream cannot be
// read again, so they are kept in an anonymous memory file until the
// restorer places them: it maps the file (--staged-fd) and frees each page
// once placed, so the pages are held once, never twice; a page sent again in
// a later round frees its older copy at once. Nothing goes to disk.
import { native } from '../native/addon.js';

export class PageStaging {
  private file = -1; // made by the first add
  private size = 0;
  private closed = false;

  get fd(): number {
    return this.file;
  }

  /** Bytes staged so far. */
  get bytes(): number {
    return this.size;
  }

  /** Appends a copy of data (whole pages, so each copy starts on a page
   * boundary); resolves with where it lies in the file. */
  async add(data: Uint8Array): Promise<number> {
    if (this.closed) throw new Error('PageStaging: closed');
    if (this.file < 0) this.file = native.memfdCreate('crmigrate-staged-pages');
    const at = this.size;
    await native.writeAll(this.file, data);
    this.size += data.length;
    return at;
  }

  /** Frees staged bytes that will never be used (a page sent again later). */
  release(at: number, len: number): void {
    if (this.file >= 0 && len > 0) native.punchHole(this.file, at, len);
  }

  /** Our descriptor only: the restorer keeps its own mapping. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.file >= 0) native.closeFd(this.file);
  }
}
