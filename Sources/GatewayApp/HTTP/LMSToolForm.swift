import Foundation
import GatewaySupport

/// One LMS's form for installing the tool, field for field in the form's order, with where to open it and what to do
/// after saving it: one block of `lti-gateway tool-config`.
public struct LMSToolForm: Sendable {
    /// One field: its label as the LMS shows it, the value to enter (one element per line of a text area; none to
    /// leave it empty) and, when the choice is not obvious, why.
    public struct Field: Sendable {
        public var label: String
        public var value: [String]
        public var note: String?
        /// The value is a document pasted whole: printed under the label, not beside it.
        public var isDocument: Bool

        public init(_ label: String, _ value: [String], note: String? = nil, isDocument: Bool = false) {
            self.label = label
            self.value = value
            self.note = note
            self.isDocument = isDocument
        }

        public init(_ label: String, _ value: String, note: String? = nil) {
            self.init(label, [value], note: note)
        }
    }

    /// A group of fields under the heading the form shows.
    public struct Section: Sendable {
        public var heading: String
        public var fields: [Field]

        public init(_ heading: String, _ fields: [Field]) {
            self.heading = heading
            self.fields = fields
        }
    }

    /// Where the form is: the LMS's name and the clicks to it.
    public var location: String
    public var sections: [Section]
    /// What to do once the form is saved, one paragraph per element.
    public var afterSaving: [String]

    public init(location: String, sections: [Section], afterSaving: [String]) {
        self.location = location
        self.sections = sections
        self.afterSaving = afterSaving
    }

    /// The block for a terminal: the location, each section's fields with their values aligned, then the steps after
    /// saving.
    public func text() -> String {
        let width = (sections.flatMap(\.fields).map(\.label.count).max() ?? 0) + 2
        let indent = String(repeating: " ", count: 4 + width)
        var lines = [location]
        for section in sections {
            lines.append("  " + section.heading)
            for field in section.fields {
                let label = "    " + (field.label + ":").padding(toLength: width, withPad: " ", startingAt: 0)
                let note = field.note.map { "(\($0))" }
                if field.isDocument {
                    lines.append(label + (note ?? ""))
                    lines += field.value
                    continue
                }
                let values = field.value.isEmpty ? [note ?? ""] : field.value + (note.map { [$0] } ?? [])
                lines.append(label + values[0])
                lines += values.dropFirst().map { indent + $0 }
            }
        }
        lines += afterSaving.map { "  " + $0 }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The fields as one JSON object, label → value in the form's order (a text area's lines joined by newlines).
    public func json() -> Data {
        let fields = sections.flatMap(\.fields)
        var out = "{\n"
        for (index, field) in fields.enumerated() {
            out += "  "
            JSONEscaping.writeString(field.label, to: &out)
            out += ": "
            JSONEscaping.writeString(field.value.joined(separator: "\n"), to: &out)
            out += index == fields.count - 1 ? "\n" : ",\n"
        }
        return Data((out + "}\n").utf8)
    }

    /// `lti-gateway platforms add` with each option's value as the LMS names or shows it.
    public static func platformsAdd(
        issuer: String, clientID: String, deployment: String, jwksURL: String, tokenURL: String, authURL: String
    ) -> String {
        "  lti-gateway platforms add --issuer \(issuer) --client-id \(clientID) --deployment \(deployment) \\\n"
            + "      --jwks-url \(jwksURL) --token-url \(tokenURL) \\\n      --auth-url \(authURL)"
    }
}
