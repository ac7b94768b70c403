//! Every explanation a warning or a finding can give, in English and Persian, keyed by
//! `RULE.what`. A code is stored in the hub's records and verdicts: never rename or remove one
//! (a store keeps it for years); add a new code for a new wording that cites other values.
//!
//! Personal data (national IDs, mobiles, postal codes, names) is never cited: staff see the
//! record they typed beside it. A VIN is not personal and is quoted.

use super::Template;

macro_rules! templates {
    ($($code:literal => $en:literal, $fa:literal;)*) => {
        /// The catalogue, in rule order.
        pub const TEMPLATES: &[Template] = &[$(Template { code: $code, en: $en, fa: $fa }),*];
    };
}

templates! {
    // R00 at entry and at the wire: fields that cannot be used.
    "R00.missing" =>
        "{field} is required but empty; fill it in and send a correction",
        "فیلد {field} الزامی است ولی خالی مانده است؛ آن را پر کنید و اصلاحیه بفرستید";
    "R00.not_a_date" =>
        "{field} is not a calendar date; fix it and send a correction",
        "مقدار فیلد {field} نادرست است (تاریخ تقویمی نیست)؛ آن را اصلاح کنید و اصلاحیه بفرستید";
    "R00.year_too_early" =>
        "{field} is in the year {year}, before {earliest}; fix it and send a correction",
        "مقدار فیلد {field} نادرست است (سال {year} پیش از {earliest} است)؛ آن را اصلاح کنید و اصلاحیه بفرستید";
    "R00.jalali_year" =>
        "{field} has the year {year}, which looks like a Solar Hijri (Jalali) year; dates are Gregorian here ({year} is about {gregorian}-{gregorian_next}): enter the Gregorian date",
        "سال {year} در {field} سال خورشیدی به نظر می‌رسد؛ تاریخ‌ها در اینجا میلادی‌اند ({year} حدود {gregorian} تا {gregorian_next} میلادی است): تاریخ میلادی را وارد کنید";
    // No longer cited (the entry checks warn of the future as S01 and T01, as the hub finds
    // it); kept because a code is never removed: an older agent's warnings still render.
    "R00.far_future" =>
        "{field} is more than a day in the future; fix it and send a correction",
        "مقدار فیلد {field} نادرست است (بیش از یک روز در آینده است)؛ آن را اصلاح کنید و اصلاحیه بفرستید";
    "R00.company_id" =>
        "{field} is not a national company ID (11 digits with a valid check digit); check the company's registration and correct it, or HQ cannot recognise the organisation",
        "{field} شناسهٔ ملی شرکت نیست (۱۱ رقم با رقم کنترل درست)؛ آن را با مدارک ثبت شرکت بررسی و اصلاح کنید، وگرنه ستاد نمی‌تواند این سازمان را بشناسد";
    "R00.not_uuid_v7" =>
        "{field} must be a UUID version 7; fix it and send a correction",
        "مقدار فیلد {field} نادرست است (باید UUID نسخهٔ ۷ باشد)؛ آن را اصلاح کنید و اصلاحیه بفرستید";
    "R00.not_uuid" =>
        "{field} is not a UUID; fix it and send a correction",
        "مقدار فیلد {field} نادرست است (UUID نیست)؛ آن را اصلاح کنید و اصلاحیه بفرستید";
    "R00.negative_time" =>
        "{field} must be milliseconds since 1970 (UTC), or 0 when the source does not say; fix it and send a correction",
        "مقدار فیلد {field} نادرست است (باید میلی‌ثانیه از ۱۹۷۰ به وقت UTC باشد، یا ۰ اگر مبدأ زمانی نگفته است)؛ آن را اصلاح کنید و اصلاحیه بفرستید";
    "R00.replaced_at_off_day" =>
        "{field} is not a time of the day odometer_replacement.replaced_on names (UTC): give that day's time, or leave the time out; fix it and send a correction",
        "مقدار فیلد {field} نادرست است (زمانی از روزی که odometer_replacement.replaced_on می‌گوید نیست؛ زمان همان روز را بدهید یا زمان را خالی بگذارید)؛ آن را اصلاح کنید و اصلاحیه بفرستید";
    "R00.schema_version" =>
        "schema_version {version} is unknown; this hub understands version {known}. Update the dealer agent.",
        "نسخهٔ قالب رکورد (schema_version = {version}) برای مرکز ناشناخته است؛ مرکز نسخهٔ {known} را می‌شناسد. نرم‌افزار نمایندگی را به‌روز کنید.";
    "R00.too_long" =>
        "{field} is {size} bytes, over the limit of {limit} bytes; shorten it, then send a correction",
        "فیلد {field} {size} بایت است، بیش از حد مجاز {limit} بایت؛ آن را کوتاه کنید، سپس اصلاحیه بفرستید";
    "R00.too_many" =>
        "{field} has {size} entries, over the limit of {limit}; split the record, then send a correction",
        "فیلد {field} {size} مورد دارد، بیش از حد مجاز {limit}؛ رکورد را تقسیم کنید، سپس اصلاحیه بفرستید";
    "R00.record_too_large" =>
        "the record is {size} bytes, over the limit of {limit} bytes; shorten it, then send a correction",
        "این رکورد {size} بایت است، بیش از حد مجاز {limit} بایت؛ آن را کوتاه کنید، سپس اصلاحیه بفرستید";
    "R00.withheld" =>
        "the dealership's agent could not send this record's content ({why}); the record is kept at the dealership: record it again with a correction",
        "نرم‌افزار نمایندگی محتوای این رکورد را نتوانست بفرستد ({why})؛ رکورد در نمایندگی مانده است: آن را با یک اصلاحیه دوباره ثبت کنید";
    "R00.record_id_reused" =>
        "record_id is already used by another record (dealer {dealer}, seq {seq})",
        "شناسهٔ رکورد پیش‌تر برای رکورد دیگری (نمایندگی {dealer}، شمارهٔ {seq}) به کار رفته است";
    "R00.correction_unknown_target" =>
        "correction.target_record_id {target} names no record of dealer {dealer}; a correction must name one of this dealer's records",
        "شناسهٔ رکورد هدف اصلاحیه ({target}) به هیچ رکوردی از نمایندگی {dealer} اشاره نمی‌کند؛ اصلاحیه باید به یکی از رکوردهای همین نمایندگی اشاره کند";
    "R00.correction_target_missing" =>
        "correction.target_record_id {target} is indexed but its record is missing",
        "رکورد هدف اصلاحیه ({target}) یافت نشد";
    "R00.correction_of_correction" =>
        "a correction cannot be corrected; correct the original record again",
        "اصلاحیه را نمی‌توان اصلاح کرد؛ رکورد اصلی را دوباره اصلاح کنید";
    "R00.correction_changes_kind" =>
        "the amended content is a {amended} but the target record is a {target}; a correction keeps the record's kind",
        "محتوای اصلاحی از نوع {amended} است ولی رکورد هدف از نوع {target} است؛ اصلاحیه نوع رکورد را تغییر نمی‌دهد";

    // Identities.
    "C01.check_digit" =>
        "{field} fails the code melli check digit (or is not 8-10 digits); a digit is probably mistyped: check the national card and send a correction",
        "کد ملی در {field} با رقم کنترل نمی‌خواند (یا ۸ تا ۱۰ رقم نیست)؛ احتمالاً رقمی اشتباه وارد شده است: کارت ملی را بررسی کنید و اصلاحیه بفرستید";
    "C02.placeholder" =>
        "{field} is a placeholder (one digit repeated, or digits 4-9 all zero), not a real code melli; ask the customer for the card and send a correction",
        "کد ملی در {field} ساختگی است (یک رقم تکراری یا رقم‌های ۴ تا ۹ همه صفر)؛ کارت ملی مشتری را ببینید و اصلاحیه بفرستید";
    "C03.not_a_mobile" =>
        "{field} is not an Iranian mobile number (09xxxxxxxxx, +989xxxxxxxxx or 00989xxxxxxxxx); a landline belongs in phone",
        "{field} شمارهٔ همراه ایرانی نیست (۰۹xxxxxxxxx، ‎+989xxxxxxxxx یا ۰۰۹۸۹xxxxxxxxx)؛ تلفن ثابت را در فیلد تلفن وارد کنید";
    "C04.placeholder" =>
        "{field} looks like a placeholder (repeated or consecutive digits, or a known dummy), not the customer's number; ask for the real mobile",
        "شمارهٔ همراه در {field} ساختگی به نظر می‌رسد (رقم‌های تکراری یا پشت‌سرهم، یا شمارهٔ شناخته‌شدهٔ ساختگی)؛ شمارهٔ واقعی مشتری را بپرسید";
    "C05.staff_mobile" =>
        "{field} belongs to a staff member of dealer {dealer}; register the customer's own mobile",
        "شمارهٔ همراه در {field} متعلق به یکی از کارکنان نمایندگی {dealer} است؛ شمارهٔ خود مشتری را ثبت کنید";
    "C05.staff_national_id" =>
        "{field} is the national ID of a staff member of dealer {dealer}; register the customer's own",
        "کد ملی در {field} متعلق به یکی از کارکنان نمایندگی {dealer} است؛ کد ملی خود مشتری را ثبت کنید";
    "C05.shared_mobile" =>
        "customer.mobile is registered for more than {max} different customers (at dealers {dealers}); ask for the customer's own mobile",
        "این شمارهٔ همراه برای بیش از {max} مشتری مختلف ثبت شده است (در نمایندگی‌های {dealers})؛ شمارهٔ خود مشتری را بپرسید";
    "C06.not_ten_digits" =>
        "{field} is not 10 digits; check the postal code and send a correction",
        "کد پستی در {field} ده رقم نیست؛ آن را بررسی کنید و اصلاحیه بفرستید";
    "C07.names_differ" =>
        "customer.national_id is registered under different names (at dealers {dealers}); check the name and the national card. Listed for HQ identity review",
        "این کد ملی با نام‌های مختلف ثبت شده است (در نمایندگی‌های {dealers})؛ نام و کارت ملی را بررسی کنید. برای بازبینی هویت در ستاد فهرست شد";
    "H01.confirmed" =>
        "HQ confirmed this customer's {what} as \"{confirmed}\"; this record says \"{stated}\": correct the record",
        "ستاد {what} این مشتری را «{confirmed}» تأیید کرده است؛ این رکورد «{stated}» می‌گوید: رکورد را اصلاح کنید";
    "H01.vin_sold_by" =>
        "HQ confirmed that VIN {vin} was sold by dealer {seller}; this delivery cannot stand: correct or withdraw it",
        "ستاد تأیید کرده است که خودروی {vin} را نمایندگی {seller} فروخته است؛ این تحویل معتبر نیست: آن را اصلاح یا حذف کنید";

    // VINs and odometers.
    "V01.not_a_vin" =>
        "{field} `{vin}` is not a VIN: it must be 17 characters of 0-9 and A-Z without I, O or Q; check it on the vehicle and send a correction",
        "شمارهٔ شاسی `{vin}` در {field} معتبر نیست: باید ۱۷ نویسه از ۰ تا ۹ و A تا Z بدون I، O و Q باشد؛ آن را روی خودرو بررسی کنید و اصلاحیه بفرستید";
    "V02.model_year" =>
        "{field} `{vin}` has `{code}` in position 10, which is not a model-year code (never U, Z or 0); check the VIN",
        "نویسهٔ دهم شمارهٔ شاسی `{vin}` در {field} (`{code}`) کد سال ساخت معتبری نیست (هرگز U، Z یا 0 نیست)؛ شماره را بررسی کنید";
    "V03.check_digit" =>
        "{field} `{vin}` has check digit `{digit}` in position 9 but its other characters give `{expected}`; a character is probably mistyped",
        "رقم کنترل شمارهٔ شاسی `{vin}` در {field} (نویسهٔ نهم: `{digit}`) با بقیهٔ نویسه‌ها (`{expected}`) نمی‌خواند؛ احتمالاً نویسه‌ای اشتباه وارد شده است";
    "O01.below_earlier" =>
        "repair_order.odometer_in_km ({km} km) is below an earlier reading of VIN {vin}: {earlier_km} km on {earlier_day} at dealer {dealer}, with no odometer replacement recorded between; check the reading, or record the replacement",
        "کیلومتر پذیرش ({km}) کمتر از کیلومتر ثبت‌شدهٔ پیشین خودروی {vin} است: {earlier_km} در {earlier_day} در نمایندگی {dealer}، بی آنکه تعویض کیلومترشمار ثبت شده باشد؛ کیلومتر را بررسی کنید یا تعویض را ثبت کنید";
    "O02.out_of_range" =>
        "{field} is {km} km, outside 0..{max} km; check the reading and send a correction",
        "کیلومتر {field} ({km}) خارج از بازهٔ ۰ تا {max} است؛ کیلومتر را بررسی کنید و اصلاحیه بفرستید";
    "O02.out_below_in" =>
        "repair_order.odometer_out_km ({out_km}) is below repair_order.odometer_in_km ({in_km}); the car cannot lose distance in the workshop: fix the readings",
        "کیلومتر خروج ({out_km}) کمتر از کیلومتر پذیرش ({in_km}) است؛ خودرو در تعمیرگاه کیلومتر از دست نمی‌دهد: کیلومترها را اصلاح کنید";
    "O03.too_fast" =>
        "repair_order.odometer_in_km ({km} km) implies {per_day} km/day since the previous reading of VIN {vin} ({earlier_km} km on {earlier_day}), above the limit of {limit} km/day; check the reading",
        "کیلومتر پذیرش ({km}) یعنی روزانه {per_day} کیلومتر از آخرین کیلومتر خودروی {vin} ({earlier_km} در {earlier_day}) که بیش از حد {limit} کیلومتر در روز است؛ کیلومتر را بررسی کنید";

    // Sales.
    "S01.delivery_before_sale" =>
        "retail_delivery.delivery_date ({delivered}) is before retail_delivery.sale_date ({sold}); a car cannot be handed over before it is sold: fix either date",
        "تاریخ تحویل ({delivered}) پیش از تاریخ فروش ({sold}) است؛ خودرو پیش از فروش تحویل نمی‌شود: یکی از دو تاریخ را اصلاح کنید";
    "S01.delivery_after_made" =>
        "retail_delivery.delivery_date ({delivered}) is after the record was made; record a delivery once the car is handed over",
        "تاریخ تحویل ({delivered}) پس از زمان ثبت رکورد است؛ تحویل را پس از تحویل واقعی خودرو ثبت کنید";
    "S02.delivered_twice" =>
        "VIN {vin} was already delivered new to a retail customer on {first_day} by dealer {dealer}; a car is sold new once: check the VIN, or report a resale",
        "خودروی {vin} پیش‌تر در {first_day} به‌عنوان خودروی نو به مشتری خرده‌فروشی تحویل شده است (نمایندگی {dealer})؛ خودرو یک بار نو فروخته می‌شود: شمارهٔ شاسی را بررسی کنید یا فروش دست‌دوم را ثبت کنید";
    "S03.sale_to_itself" =>
        "the buyer or owner is dealer {dealer} itself or one of its staff, but retail_delivery.sale_category is retail; report it as an internal or demo sale",
        "خریدار یا مالک، خود نمایندگی {dealer} یا یکی از کارکنان آن است ولی نوع فروش «خرده‌فروشی» ثبت شده است؛ آن را فروش داخلی یا نمایشی ثبت کنید";
    "S04.bunching" =>
        "deliveries bunch in the last {tail_days} days of {month}: more than {ratio} times the daily rate of the rest of the month, and at least {min} of them; bunching before a target date: check that these cars were really handed over then",
        "تحویل‌ها در {tail_days} روز پایانی {month} انباشته شده‌اند: بیش از {ratio} برابر نرخ روزانهٔ بقیهٔ ماه و دست‌کم {min} تحویل؛ تجمع پیش از موعد هدف: تحویل واقعی این خودروها در آن روزها را بررسی کنید";

    // Repair orders and warranty.
    "RO1.before_delivery" =>
        "repair_order.opened_at_ms ({opened}) is before VIN {vin} was delivered ({delivered}); a customer-pay or warranty visit cannot precede delivery: check the date or the VIN, or use pay type pre-delivery",
        "زمان پذیرش ({opened}) پیش از تحویل خودروی {vin} ({delivered}) است؛ تعمیر به هزینهٔ مشتری یا گارانتی پیش از تحویل ممکن نیست: تاریخ یا شمارهٔ شاسی را بررسی کنید یا نوع پرداخت را «پیش از تحویل» بگذارید";
    "RO2.completed_before_opened" =>
        "repair_order.completed_at_ms ({completed}) is before repair_order.opened_at_ms ({opened}); fix the times",
        "زمان پایان تعمیر ({completed}) پیش از زمان پذیرش ({opened}) است؛ زمان‌ها را اصلاح کنید";
    "RO3.number_reused" =>
        "repair-order number {number} was already used by this dealer for VIN {vin} opened on {opened}; give this visit its own number",
        "شمارهٔ پذیرش {number} پیش‌تر در همین نمایندگی برای خودروی {vin} در {opened} به کار رفته است؛ برای این پذیرش شمارهٔ تازه بگیرید";
    "W01.outside_window" =>
        "warranty repair order on VIN {vin} at {opened} and {km} km is outside the warranty window ({months} months or {max_km} km from delivery on {delivered}); bill it as customer pay or goodwill",
        "تعمیر گارانتی خودروی {vin} در {opened} با {km} کیلومتر خارج از دورهٔ گارانتی است ({months} ماه یا {max_km} کیلومتر از تحویل در {delivered})؛ آن را به هزینهٔ مشتری یا حسن نیت ثبت کنید";
    "W02.repeat_job" =>
        "the same labour operation and part were done on VIN {vin} on {earlier_day} at dealer {dealer}, within {days} days; check whether this is a repeat claim",
        "همین اجرت و قطعه روی خودروی {vin} در {earlier_day} در نمایندگی {dealer} انجام شده است، در کمتر از {days} روز؛ تکراری بودن ادعا را بررسی کنید";
    "W03.dealer_hopping" =>
        "VIN {vin} visited {dealers} dealers ({list}) within {days} days; check for split or duplicate claims",
        "خودروی {vin} در کمتر از {days} روز به {dealers} نمایندگی ({list}) مراجعه کرده است؛ ادعاهای تکراری یا تقسیم‌شده را بررسی کنید";

    // Surveys.
    "Q01.entered_by_staff" =>
        "the survey was entered by staff member {staff} of dealer {dealer}, not by the customer; surveys must reach HQ from the customer (SMS, web, call centre). HQ can dismiss the flag for an answer taken on paper",
        "این نظرسنجی را کارمند {staff} نمایندگی {dealer} ثبت کرده است، نه خود مشتری؛ پاسخ نظرسنجی باید از خود مشتری برسد (پیامک، وب، مرکز تماس). اگر پاسخ روی کاغذ گرفته شده است، ستاد می‌تواند این پرچم را رد کند";
    "Q01.staff_respondent" =>
        "survey.respondent_mobile belongs to a staff member of dealer {dealer}; a survey must be answered by the customer",
        "شمارهٔ پاسخ‌دهندهٔ نظرسنجی متعلق به یکی از کارکنان نمایندگی {dealer} است؛ نظرسنجی را باید خود مشتری پاسخ دهد";
    "Q01.too_soon" =>
        "the survey was submitted at {submitted}, less than {minutes} minutes after repair order {number} closed ({completed}); a customer's answer takes longer: surveys must not be filled in at the counter",
        "نظرسنجی در {submitted} ثبت شده است، کمتر از {minutes} دقیقه پس از بسته شدن پذیرش {number} ({completed})؛ نظرسنجی نباید پشت پیشخوان پر شود";
    "Q01.uniform" =>
        "at least {share}% of the dealer's surveys in {month} carry the top score (of at least {min} surveys); answers this uniform are not believable: surveys must be answered by customers",
        "دست‌کم {share}٪ از نظرسنجی‌های نمایندگی در {month} بالاترین امتیاز را دارند (از دست‌کم {min} نظرسنجی)؛ پاسخ‌هایی تا این حد یکسان باورپذیر نیست: نظرسنجی را باید خود مشتریان پاسخ دهند";

    // Clocks.
    "T01.future" =>
        "{field} ({at}) is {minutes} minutes in the future of the hub clock; record events once they have happened, and check the PC's date and time",
        "زمان {field} ({at}) {minutes} دقیقه جلوتر از ساعت مرکز است؛ رویداد را پس از وقوع ثبت کنید و تاریخ و ساعت رایانه را بررسی کنید";
    "T01.source_clock_ahead" =>
        "origin.created_at_ms ({created}) is more than {tolerance} minutes later than the time the source gave the dealer's next record from it: the source system's clock was set ahead when it made this record; check that computer's date and time and the times of the records it made then",
        "زمان ساخت رکورد در سامانهٔ مبدأ ({created}) بیش از {tolerance} دقیقه دیرتر از زمان رکورد بعدی همین نمایندگی از همان سامانه است: ساعت سامانهٔ مبدأ هنگام ساخت این رکورد جلو بوده است؛ تاریخ و ساعت آن رایانه و زمان رکوردهایی را که در آن هنگام ساخته است بررسی کنید";
    "T02.clock_offset" =>
        "the dealership PC's clock was {minutes} minutes off the hub's when this record was synced (limit {limit} minutes), so its times cannot be trusted; set the PC's clock (enable automatic time)",
        "ساعت رایانهٔ نمایندگی هنگام همگام‌سازی این رکورد {minutes} دقیقه با ساعت مرکز اختلاف داشت (حد مجاز {limit} دقیقه)، پس زمان‌های آن قابل اعتماد نیست؛ ساعت رایانه را تنظیم کنید (تنظیم خودکار زمان)";
}
