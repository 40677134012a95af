/// `application/x-www-form-urlencoded` encoding with RFC 3986 unreserved characters left as they are.
public enum FormEncoding {
    /// RFC 3986 unreserved bytes, by byte value.
    private static let unreserved: [Bool] = (0...255).map { byte in
        Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8).contains(UInt8(byte))
    }
    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    public static func percentEncode(_ value: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count + 16)
        for byte in value.utf8 {
            if unreserved[Int(byte)] {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0f)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { percentEncode($0.0) + "=" + percentEncode($0.1) }.joined(separator: "&")
    }
}
