import Foundation
import GatewaySupport
import Hummingbird

/// A JSON document the admin API writes, with its object keys in the order given (answers and error bodies read
/// the same every time).
enum JSONValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case number(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])

    static func == (a: JSONValue, b: JSONValue) -> Bool { a.serialized == b.serialized }

    /// Text or null.
    static func string(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    /// A whole number or null.
    static func integer(_ value: Int?) -> JSONValue { value.map(JSONValue.integer) ?? .null }
    /// A time as ISO 8601 in UTC (`2026-11-30T19:02:03Z`), or null.
    static func time(_ value: Date?) -> JSONValue {
        value.map { .string(Date.ISO8601FormatStyle(includingFractionalSeconds: false).format($0)) } ?? .null
    }

    var serialized: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .string(let text): JSONEscaping.writeString(text, to: &out)
        case .integer(let value): out += String(value)
        case .number(let value): out += value.isFinite ? "\(value)" : "null"
        case .bool(let value): out += value ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { out += "," }
                JSONEscaping.writeString(key, to: &out)
                out += ":"
                value.write(to: &out)
            }
            out += "}"
        }
    }

    /// An answer carrying this document; never cached (it may describe keys and launches).
    func response(status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: serialized)))
    }
}
