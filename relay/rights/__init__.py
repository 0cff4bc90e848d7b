"""A participant's data rights: everything held about them as one zip, and their erasure.

`export.export` gathers the record, every letter they wrote as it was (or will be)
delivered and every letter that reached them, with masked addresses only, and the audit
entries naming them (ids, times, outcomes), in a zip with a README in their language.
`erase.erase` removes the person from the store, the spool and the local Maildir, beside a
running `serve`, keeping only records without personal data for the program's figures, and
tells both libraries' moderators. Both are written to the audit log with who asked.
"""

from relay.rights.erase import Erased, erase, erasure_preview
from relay.rights.export import export
from relay.rights.export import handed_over as export_handed_over

__all__ = ["Erased", "erase", "erasure_preview", "export", "export_handed_over"]
