//! What each kind of record's form asks for: its proto fields in proto3 JSON paths, with their
//! Persian and English labels, how each is typed, and the enum values by their Persian names.
//! [`super`] turns a filled form into a payload with these and fills a form from a stored
//! record; the staff screen shows them, the import's mapping names the same paths.

use hamgam_proto::RecordKind;

use crate::staff::Role;

/// How a field is typed on the form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input {
    /// Free text, written as typed (names, descriptions).
    Text,
    /// A code typed left to right: references, numbers, IDs; digits of any script are
    /// accepted and stored as Latin digits.
    Code,
    /// A VIN: as [`Input::Code`], upper-cased.
    Vin,
    /// A whole number (kilometres, years, scores); thousands separators allowed.
    Whole,
    /// A decimal number (hours); `٫` or `.` as the decimal point.
    Decimal,
    /// A Jalali date, stored as the start of that day in Tehran (an `...AtMs` field).
    Day,
    /// A Jalali date, stored as the proto's Gregorian `Date` message.
    Date,
    /// One of a proto enum's values, chosen by its name.
    Choice(&'static [Choice]),
    /// A yes/no box.
    Check,
}

/// One value of an enum on the form: proto3 JSON name, Persian, English.
pub type Choice = (&'static str, &'static str, &'static str);

/// One field of a form.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its proto3 JSON path in the payload (`address.postalCode`).
    pub path: &'static str,
    pub fa: &'static str,
    pub en: &'static str,
    pub input: Input,
}

/// Repeated lines of a form (job lines, delivery parties), shown as a table of rows.
#[derive(Debug, Clone, Copy)]
pub struct Rows {
    /// The repeated field's proto3 JSON name (`jobLines`).
    pub path: &'static str,
    pub fa: &'static str,
    pub en: &'static str,
    /// Empty rows offered on a new form (a correction shows the record's rows and these).
    pub count: usize,
    pub fields: &'static [Field],
    /// A field numbered 1, 2, ... in the order of the rows kept, when the proto has one.
    pub numbered: Option<&'static str>,
}

/// The form of one kind of record.
#[derive(Debug, Clone, Copy)]
pub struct FormSpec {
    pub kind: RecordKind,
    /// Its address: `/new/<slug>`.
    pub slug: &'static str,
    pub fa: &'static str,
    pub en: &'static str,
    pub fields: &'static [Field],
    pub rows: Option<Rows>,
    /// A field the logged-in staff member fills by being logged in (the adviser of a repair
    /// order, the salesperson of a delivery or lead), when the record does not name another.
    pub staff_field: Option<&'static str>,
    /// Who uses this form; a manager uses every form.
    pub roles: &'static [Role],
}

impl FormSpec {
    /// Whether `role` may fill this form.
    pub fn allows(&self, role: Role) -> bool {
        role == Role::Manager || self.roles.contains(&role)
    }
}

const fn f(path: &'static str, fa: &'static str, en: &'static str, input: Input) -> Field {
    Field {
        path,
        fa,
        en,
        input,
    }
}

const PARTY_TYPES: &[Choice] = &[
    ("PARTY_TYPE_PERSON", "شخص حقیقی", "person"),
    (
        "PARTY_TYPE_ORGANIZATION",
        "شخص حقوقی (سازمان)",
        "organisation",
    ),
];
const SEGMENTS: &[Choice] = &[
    ("CUSTOMER_SEGMENT_B2C", "مشتری شخصی (B2C)", "private (B2C)"),
    ("CUSTOMER_SEGMENT_B2B", "شرکتی (B2B)", "business (B2B)"),
    ("CUSTOMER_SEGMENT_B2G", "دولتی (B2G)", "government (B2G)"),
];
const SALE_CATEGORIES: &[Choice] = &[
    ("SALE_CATEGORY_RETAIL", "خرده‌فروشی", "retail"),
    ("SALE_CATEGORY_FLEET", "ناوگان", "fleet"),
    ("SALE_CATEGORY_DEMO", "خودروی نمایشی", "demo"),
    ("SALE_CATEGORY_INTERNAL", "داخلی", "internal"),
];
const PARTY_ROLES: &[Choice] = &[
    ("PARTY_ROLE_BUYER", "خریدار", "buyer"),
    ("PARTY_ROLE_CO_BUYER", "خریدار شریک", "co-buyer"),
    ("PARTY_ROLE_OWNER", "مالک", "owner"),
    (
        "PARTY_ROLE_PRIMARY_DRIVER",
        "راننده‌ی اصلی",
        "primary driver",
    ),
    ("PARTY_ROLE_FLEET_ACCOUNT", "حساب ناوگان", "fleet account"),
];
const PAY_TYPES: &[Choice] = &[
    (
        "PAY_TYPE_CUSTOMER",
        "آزاد (به هزینه‌ی مشتری)",
        "customer pay",
    ),
    ("PAY_TYPE_WARRANTY", "گارانتی", "warranty"),
    ("PAY_TYPE_INTERNAL", "داخلی", "internal"),
    ("PAY_TYPE_GOODWILL", "مساعدت (حسن نیت)", "goodwill"),
    ("PAY_TYPE_CAMPAIGN", "کمپین (فراخوان)", "campaign"),
    ("PAY_TYPE_PRE_DELIVERY", "پیش از تحویل", "pre-delivery"),
];
const LEAD_SOURCES: &[Choice] = &[
    (
        "LEAD_SOURCE_SHOWROOM_VISIT",
        "مراجعه به نمایشگاه",
        "showroom visit",
    ),
    ("LEAD_SOURCE_PHONE_CALL", "تماس تلفنی", "phone call"),
    ("LEAD_SOURCE_TEST_DRIVE", "رانندگی آزمایشی", "test drive"),
    ("LEAD_SOURCE_WEB", "وب‌سایت", "web"),
];
const COMPLAINT_STATUSES: &[Choice] = &[
    ("COMPLAINT_STATUS_OPENED", "ثبت شد", "opened"),
    ("COMPLAINT_STATUS_UPDATED", "پیگیری", "updated"),
    ("COMPLAINT_STATUS_RESOLVED", "حل شد", "resolved"),
    ("COMPLAINT_STATUS_CLOSED", "بسته شد", "closed"),
];
const SURVEY_SUBJECTS: &[Choice] = &[
    ("SURVEY_SUBJECT_DELIVERY", "تحویل خودرو", "delivery"),
    ("SURVEY_SUBJECT_REPAIR_ORDER", "پذیرش تعمیر", "repair order"),
];
const SURVEY_CHANNELS: &[Choice] = &[
    ("SURVEY_CHANNEL_SMS", "پیامک", "SMS"),
    ("SURVEY_CHANNEL_PHONE", "تلفن", "phone"),
    ("SURVEY_CHANNEL_WEB", "وب", "web"),
    (
        "SURVEY_CHANNEL_IN_STORE",
        "حضوری در نمایندگی",
        "in the dealership",
    ),
];
const CONDITIONS: &[Choice] = &[
    ("VEHICLE_CONDITION_SCRAPPED", "اسقاط", "scrapped"),
    ("VEHICLE_CONDITION_STOLEN", "سرقت", "stolen"),
    ("VEHICLE_CONDITION_RECOVERED", "پیدا شد", "recovered"),
    ("VEHICLE_CONDITION_EXPORTED", "صادر شد", "exported"),
];

const CUSTOMER_REF: Field = f("customerRef", "کد مشتری", "Customer ref", Input::Code);
const VIN: Field = f("vin", "شماره‌ی شاسی (VIN)", "VIN", Input::Vin);

const SALES: &[Role] = &[Role::Sales];
const SERVICE: &[Role] = &[Role::Service];
const BOTH: &[Role] = &[Role::Sales, Role::Service];

/// Every form, in the order of the menu.
pub const FORMS: &[FormSpec] = &[
    FormSpec {
        kind: RecordKind::Customer,
        slug: "customer",
        fa: "مشتری",
        en: "Customer",
        fields: &[
            CUSTOMER_REF,
            f(
                "partyType",
                "نوع شخص",
                "Person or organisation",
                Input::Choice(PARTY_TYPES),
            ),
            f("segment", "گروه مشتری", "Segment", Input::Choice(SEGMENTS)),
            f("givenName", "نام", "Given name", Input::Text),
            f("familyName", "نام خانوادگی", "Family name", Input::Text),
            f(
                "nationalId",
                "کد ملی",
                "National ID (code melli)",
                Input::Code,
            ),
            f(
                "organizationName",
                "نام سازمان",
                "Organisation name",
                Input::Text,
            ),
            f(
                "companyNationalId",
                "شناسه‌ی ملی شرکت",
                "Company national ID",
                Input::Code,
            ),
            f("mobile", "تلفن همراه", "Mobile", Input::Code),
            f("phone", "تلفن ثابت", "Phone", Input::Code),
            f("email", "رایانامه", "Email", Input::Code),
            f("address.province", "استان", "Province", Input::Text),
            f("address.city", "شهر", "City", Input::Text),
            f("address.line", "نشانی", "Address", Input::Text),
            f("address.postalCode", "کد پستی", "Postal code", Input::Code),
            f(
                "consent.marketingSms",
                "پیامک تبلیغاتی می‌پذیرد",
                "Accepts marketing SMS",
                Input::Check,
            ),
            f(
                "consent.marketingCall",
                "تماس تبلیغاتی می‌پذیرد",
                "Accepts marketing calls",
                Input::Check,
            ),
        ],
        rows: None,
        staff_field: None,
        roles: BOTH,
    },
    FormSpec {
        kind: RecordKind::RetailDelivery,
        slug: "retail-delivery",
        fa: "تحویل خودرو",
        en: "Retail delivery",
        fields: &[
            f("dealRef", "شماره‌ی قرارداد", "Deal ref", Input::Code),
            VIN,
            f("modelCode", "کد مدل", "Model code", Input::Code),
            f("modelName", "نام مدل", "Model name", Input::Text),
            f("modelYear", "سال ساخت", "Model year", Input::Whole),
            f("saleDate", "تاریخ فروش", "Sale date (Jalali)", Input::Date),
            f(
                "deliveryDate",
                "تاریخ تحویل",
                "Delivery date (Jalali)",
                Input::Date,
            ),
            f(
                "odometerKm",
                "کیلومتر هنگام تحویل",
                "Odometer at delivery (km)",
                Input::Whole,
            ),
            f(
                "saleCategory",
                "نوع فروش",
                "Sale category",
                Input::Choice(SALE_CATEGORIES),
            ),
        ],
        rows: Some(Rows {
            path: "parties",
            fa: "طرف‌های قرارداد",
            en: "Parties",
            count: 3,
            fields: &[
                f("role", "نقش", "Role", Input::Choice(PARTY_ROLES)),
                CUSTOMER_REF,
            ],
            numbered: None,
        }),
        staff_field: Some("salespersonId"),
        roles: SALES,
    },
    FormSpec {
        kind: RecordKind::RepairOrder,
        slug: "repair-order",
        fa: "پذیرش تعمیر",
        en: "Repair order",
        fields: &[
            f(
                "roNumber",
                "شماره‌ی پذیرش",
                "Repair order number",
                Input::Code,
            ),
            f(
                "ownerRef",
                "کد مشتری (مالک)",
                "Owner's customer ref",
                Input::Code,
            ),
            f(
                "driverRef",
                "کد مشتری (راننده)",
                "Driver's customer ref",
                Input::Code,
            ),
            VIN,
            f(
                "odometerInKm",
                "کیلومتر ورود",
                "Odometer in (km)",
                Input::Whole,
            ),
            f(
                "odometerOutKm",
                "کیلومتر خروج",
                "Odometer out (km)",
                Input::Whole,
            ),
            f(
                "openedAtMs",
                "تاریخ پذیرش",
                "Opened on (Jalali)",
                Input::Day,
            ),
            f(
                "completedAtMs",
                "تاریخ پایان کار",
                "Completed on (Jalali)",
                Input::Day,
            ),
            f(
                "payType",
                "نوع پرداخت",
                "Pay type",
                Input::Choice(PAY_TYPES),
            ),
            f(
                "totalRials",
                "مبلغ کل (ریال)",
                "Total (rials)",
                Input::Whole,
            ),
        ],
        rows: Some(Rows {
            path: "jobLines",
            fa: "کارها",
            en: "Job lines",
            count: 3,
            fields: &[
                f("laborOpCode", "کد اجرت", "Labour op code", Input::Code),
                f("complaint", "شرح ایراد", "Complaint", Input::Text),
                f("actualHours", "ساعت کار", "Hours", Input::Decimal),
            ],
            numbered: Some("lineNumber"),
        }),
        staff_field: Some("advisorId"),
        roles: SERVICE,
    },
    FormSpec {
        kind: RecordKind::Lead,
        slug: "lead",
        fa: "سرنخ فروش",
        en: "Lead",
        fields: &[
            f("leadRef", "شماره‌ی سرنخ", "Lead ref", Input::Code),
            CUSTOMER_REF,
            f(
                "source",
                "راه آشنایی",
                "Source",
                Input::Choice(LEAD_SOURCES),
            ),
            f(
                "modelInterest",
                "مدل مورد نظر",
                "Model of interest",
                Input::Text,
            ),
            f(
                "contactedAtMs",
                "تاریخ تماس",
                "Contacted on (Jalali)",
                Input::Day,
            ),
            f("notes", "یادداشت", "Notes", Input::Text),
        ],
        rows: None,
        staff_field: Some("salespersonId"),
        roles: SALES,
    },
    FormSpec {
        kind: RecordKind::Complaint,
        slug: "complaint",
        fa: "شکایت",
        en: "Complaint",
        fields: &[
            f("caseRef", "شماره‌ی پرونده", "Case ref", Input::Code),
            CUSTOMER_REF,
            VIN,
            f(
                "status",
                "وضعیت",
                "Status",
                Input::Choice(COMPLAINT_STATUSES),
            ),
            f("category", "موضوع", "Category", Input::Text),
            f("description", "شرح", "Description", Input::Text),
            f("resolution", "راه‌حل", "Resolution", Input::Text),
            f("eventAtMs", "تاریخ", "On (Jalali)", Input::Day),
        ],
        rows: None,
        staff_field: None,
        roles: BOTH,
    },
    FormSpec {
        kind: RecordKind::Survey,
        slug: "survey",
        fa: "نظرسنجی",
        en: "Survey",
        fields: &[
            f("surveyRef", "شماره‌ی نظرسنجی", "Survey ref", Input::Code),
            CUSTOMER_REF,
            f(
                "subject",
                "درباره‌ی",
                "About",
                Input::Choice(SURVEY_SUBJECTS),
            ),
            f(
                "subjectRef",
                "شماره‌ی تحویل یا پذیرش",
                "Deal or repair order ref",
                Input::Code,
            ),
            f(
                "submittedAtMs",
                "تاریخ پاسخ",
                "Answered on (Jalali)",
                Input::Day,
            ),
            f(
                "channel",
                "راه پاسخ",
                "Channel",
                Input::Choice(SURVEY_CHANNELS),
            ),
            f("csat", "رضایت (۱ تا ۵)", "Satisfaction (1-5)", Input::Whole),
            f(
                "nps",
                "احتمال پیشنهاد (۰ تا ۱۰)",
                "Likely to recommend (0-10)",
                Input::Whole,
            ),
            f("freeText", "نظر مشتری", "Customer's words", Input::Text),
            f(
                "respondentMobile",
                "تلفن همراه پاسخ‌دهنده",
                "Respondent's mobile",
                Input::Code,
            ),
        ],
        rows: None,
        staff_field: None,
        roles: BOTH,
    },
    FormSpec {
        kind: RecordKind::OdometerReplacement,
        slug: "odometer-replacement",
        fa: "تعویض کیلومترشمار",
        en: "Odometer replacement",
        fields: &[
            VIN,
            f(
                "replacedOn",
                "تاریخ تعویض",
                "Replaced on (Jalali)",
                Input::Date,
            ),
            f(
                "readingBeforeKm",
                "کیلومتر پیش از تعویض",
                "Reading before (km)",
                Input::Whole,
            ),
            f(
                "readingAfterKm",
                "کیلومتر پس از تعویض",
                "Reading after (km)",
                Input::Whole,
            ),
            f("reason", "دلیل", "Reason", Input::Text),
        ],
        rows: None,
        staff_field: None,
        roles: SERVICE,
    },
    FormSpec {
        kind: RecordKind::VehicleStatus,
        slug: "vehicle-status",
        fa: "وضعیت خودرو",
        en: "Vehicle status",
        fields: &[
            VIN,
            f("condition", "وضعیت", "Condition", Input::Choice(CONDITIONS)),
            f(
                "effectiveOn",
                "از تاریخ",
                "Effective on (Jalali)",
                Input::Date,
            ),
            f("note", "یادداشت", "Note", Input::Text),
        ],
        rows: None,
        staff_field: None,
        roles: BOTH,
    },
];

/// The form at `/new/<slug>`.
pub fn by_slug(slug: &str) -> Option<&'static FormSpec> {
    FORMS.iter().find(|form| form.slug == slug)
}

/// The form of records of `kind` (none for corrections: they are made from the form of the
/// record they correct).
pub fn by_kind(kind: RecordKind) -> Option<&'static FormSpec> {
    FORMS.iter().find(|form| form.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_but_corrections_has_one_form_and_every_path_is_a_payload_field() {
        for kind in RecordKind::ALL {
            let forms = FORMS.iter().filter(|f| f.kind == kind).count();
            let expected = usize::from(kind != RecordKind::Correction);
            assert_eq!(forms, expected, "{kind:?}");
        }
        // Each form filled with one value per field makes a payload of its kind: no path is
        // misspelt (an unknown field is refused by the proto3 JSON reader).
        for form in FORMS {
            let mut json = serde_json::json!({});
            for field in form.fields {
                super::super::set_path(&mut json, field.path, sample(field.input));
            }
            if let Some(rows) = form.rows {
                let mut row = serde_json::json!({});
                for field in rows.fields {
                    super::super::set_path(&mut row, field.path, sample(field.input));
                }
                json[rows.path] = serde_json::json!([row]);
            }
            if let Some(staff) = form.staff_field {
                json[staff] = "s-1".into();
            }
            crate::capture::payload_from_json(form.kind, json)
                .unwrap_or_else(|e| panic!("{}: {e}", form.slug));
        }
    }

    fn sample(input: Input) -> serde_json::Value {
        match input {
            Input::Whole => 1.into(),
            Input::Decimal => 1.5.into(),
            Input::Day => "1794947400000".into(),
            Input::Date => serde_json::json!({"year": 2026, "month": 11, "day": 18}),
            Input::Choice(values) => values[0].0.into(),
            Input::Check => true.into(),
            Input::Text | Input::Code | Input::Vin => "x".into(),
        }
    }
}
