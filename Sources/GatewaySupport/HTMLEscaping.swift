/// HTML escaping of text placed in an element or a quoted attribute: `<`, `>`, `&`, `"` and `'`, as
/// Mustache's `{{…}}` escapes them.
public enum HTMLEscaping {
    /// The entity that replaces `byte`, nil when the byte stays as it is.
    @inlinable
    public static func entity(for byte: UInt8) -> StaticString? {
        switch byte {
        case UInt8(ascii: "<"): "&lt;"
        case UInt8(ascii: ">"): "&gt;"
        case UInt8(ascii: "&"): "&amp;"
        case UInt8(ascii: "\""): "&quot;"
        case UInt8(ascii: "'"): "&#39;"
        default: nil
        }
    }

    /// `text` escaped.
    public static func escape(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if let entity = entity(for: byte) {
                entity.withUTF8Buffer { out.append(contentsOf: $0) }
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
