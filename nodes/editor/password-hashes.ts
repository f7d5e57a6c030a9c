/**
 * Hashes of the passwords typed into the embedded broker dialog, from the runtime: the flow's
 * credentials never hold a plain password. Node-RED calls oneditsave without waiting for
 * anything, so the hashes are asked for before: at a pause in the typing or when the field is
 * left, one request at a time, for the newest text of a field. While a field's hash is missing,
 * the dialog's Done button waits (Node-RED's own disabled state, which Ctrl+Enter respects too);
 * a click on it meanwhile asks for the hash at once and closes the dialog when it has come, as
 * the click would have.
 */

/** How long typing stops before the hash of what was typed is asked for. */
const TYPING_PAUSE_MS = 300;

/** Asks the runtime for the hash of `password`; undefined when it gives none. */
function requestHash(password: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    // jQuery rather than fetch: the editor's ajax settings carry the admin API's access token.
    $.ajax({
      url: 'durable-mqtt-embedded-broker/password-hash',
      type: 'POST',
      contentType: 'application/json',
      data: JSON.stringify({ password }),
    }).then(
      (response: { hash?: string }) => resolve(response.hash),
      () => resolve(undefined),
    );
  });
}

export class PasswordHashes {
  /** What each field held when its hash came, and the hash (undefined: the runtime made none). */
  private readonly hashes = new WeakMap<HTMLElement, { password: string; hash: string | undefined }>();
  private requesting = false;
  private doneClicked = false;
  private closed = false;
  private typing: ReturnType<typeof setTimeout> | undefined;

  /**
   * `fields()`: the dialog's password fields, as they are now; `done`: its Done button, whose
   * handler (Node-RED's) was bound before this one.
   */
  constructor(
    private readonly fields: () => JQuery,
    private readonly done: JQuery,
  ) {
    done.on('click', () => {
      if (this.closed || !this.unhashed()) return;
      this.doneClicked = true;
      this.changed();
    });
  }

  /** A password field was typed into: Done waits, and the hash is asked for at a pause. */
  typed(): void {
    this.done.addClass('disabled');
    clearTimeout(this.typing);
    this.typing = setTimeout(() => this.next(), TYPING_PAUSE_MS);
  }

  /** A password field was left, added or removed: hashes are asked for now. */
  changed(): void {
    clearTimeout(this.typing);
    this.next();
  }

  /** The hash of what `field` holds; undefined when there is none for it. */
  hashOf(field: HTMLElement): string | undefined {
    const known = this.hashes.get(field);
    return known?.password === String($(field).val()) ? known.hash : undefined;
  }

  /** The dialog closed: no more requests, and the Done button is no longer this dialog's. */
  close(): void {
    this.closed = true;
    clearTimeout(this.typing);
  }

  /** A field holding a password whose hash has not come yet. */
  private unhashed(): HTMLElement | undefined {
    return this.fields()
      .toArray()
      .find((field) => {
        const password = String($(field).val());
        return password !== '' && this.hashes.get(field)?.password !== password;
      });
  }

  private next(): void {
    if (this.closed) return;
    const field = this.unhashed();
    this.done.toggleClass('disabled', field !== undefined);
    if (!field) {
      if (this.doneClicked) {
        this.doneClicked = false;
        this.done.trigger('click');
      }
      return;
    }
    if (this.requesting) return;
    this.requesting = true;
    const password = String($(field).val());
    void requestHash(password).then((hash) => {
      this.requesting = false;
      this.hashes.set(field, { password, hash });
      this.next();
    });
  }
}
