package kb

// Article is a knowledge-base article as it is written (the store adds id and times).
type Article struct {
	Title    string   `json:"title"`
	Body     string   `json:"body"`
	Tags     []string `json:"tags"`
	Language string   `json:"language"` // zh or en
}

// Seeds are the demo's articles, written into an empty knowledge base once (DESK_KB_SEED): the
// questions a retail contact centre hears most, in Chinese and English.
func Seeds() []Article {
	return []Article{
		{Title: "退款到账时间", Language: "zh", Tags: []string{"退款", "售后"},
			Body: "退款审核通过后，款项原路退回：微信、支付宝 1-3 个工作日到账，银行卡 3-7 个工作日到账。" +
				"客户可在「我的订单 - 退款详情」查看进度；超过时效仍未到账的，请坐席提交工单，由财务核实后回复。"},
		{Title: "银行卡重复扣款", Language: "zh", Tags: []string{"支付", "退款", "银行卡"},
			Body: "同一笔订单被银行卡重复扣款时，系统会在对账后自动将多扣的款项原路退回，通常 1-3 个工作日内到账。" +
				"请先核对订单号与扣款时间；若 3 个工作日后仍未退回，请客户提供银行扣款记录截图，坐席创建工单并标注「重复扣款」。" +
				"切勿在对话中索取完整卡号或验证码。"},
		{Title: "快递延误怎么办", Language: "zh", Tags: []string{"物流", "快递"},
			Body: "包裹超过预计送达时间未到时，先用运单号查询最新物流轨迹。物流 48 小时未更新的，坐席向承运商发起催件；" +
				"节假日及恶劣天气可能延误 1-3 天。包裹确认丢失的，为客户补发或全额退款，由客户选择。"},
		{Title: "会员等级与积分", Language: "zh", Tags: []string{"会员", "积分"},
			Body: "会员分为普通、银卡、金卡三个等级，按近 12 个月消费金额自动升降级。每消费 1 元积 1 分，金卡会员双倍积分；" +
				"积分可在结算时抵扣现金（100 分抵 1 元），有效期至次年年底。会员权益以 App「会员中心」页面为准。"},
		{Title: "Refund timelines", Language: "en", Tags: []string{"refund", "after-sales"},
			Body: "Once a refund is approved it goes back to the original payment method: e-wallets within 1-3 business days, " +
				"bank cards within 3-7 business days. Customers can follow it under My orders > Refund details; if it is late, " +
				"open a ticket for the finance team."},
		{Title: "Double charge on a bank card", Language: "en", Tags: []string{"payment", "refund", "card"},
			Body: "When an order was charged twice to a bank card, the extra charge is refunded automatically to the same card " +
				"after reconciliation, usually within 1-3 business days. Check the order number and charge times first; if the " +
				"money is not back after 3 business days, ask for a screenshot of the bank statement and open a ticket tagged " +
				"double charge. Never ask for the full card number or a verification code in chat."},
		{Title: "Parcel delayed", Language: "en", Tags: []string{"logistics", "delivery"},
			Body: "If a parcel is past its expected delivery date, track it with the waybill number first. With no tracking " +
				"update for 48 hours, chase the carrier; holidays and bad weather can add 1-3 days. A parcel confirmed lost " +
				"is re-sent or refunded in full, as the customer prefers."},
		{Title: "Membership tiers and points", Language: "en", Tags: []string{"membership", "points"},
			Body: "Members are Standard, Silver or Gold, set by spending over the last 12 months. Every yuan spent earns one " +
				"point, doubled for Gold members; 100 points take 1 yuan off at checkout and expire at the end of the next year."},
	}
}
