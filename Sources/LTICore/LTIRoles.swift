/// LTI role URIs (LTI 1.3 §A.2), compared the way an administrator writes them: a full URI matches only itself,
/// a short name (`Instructor`) only the course-level role of that name.
public enum LTIRoles {
    /// The context membership vocabulary: roles in this course.
    public static let membership = "http://purl.imsglobal.org/vocab/lis/v2/membership#"

    /// The short name of a course-level role (`…/membership#Instructor` → `Instructor`, or a bare legacy name);
    /// nil for any other vocabulary (institution, system, sub-roles).
    public static func courseRoleName(_ role: String) -> String? {
        if role.hasPrefix(membership) { return String(role.dropFirst(membership.count)) }
        return role.contains(":") || role.contains("/") || role.contains("#") ? nil : role
    }

    /// Whether any of `roles` is named by `names` (full URIs, or short names of course roles).
    public static func any(of roles: [String], namedBy names: [String]) -> Bool {
        let names = Set(names)
        return roles.contains { names.contains($0) || courseRoleName($0).map(names.contains) == true }
    }
}
